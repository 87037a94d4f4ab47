"""Keyed pseudonyms: the only form in which a person's id leaves the hub.

``pseudonym = "v<key version>." + hex(HMAC-SHA256(K_recipient, value))[:40]`` (160 bits).

* The key is derived per recipient with HKDF from the master key of a version
  (label ``pseudonym/recipient/<recipient>``), so two recipients' feeds cannot be joined on the
  pseudonym, and nobody without the key can test a guessed CIN or SSN (an unsalted hash could
  be reversed by hashing every possible CIN: there are only 10^7 x 26 of them).
* Recipients that are allowed to link their feeds are named together in a linkage group in
  ``privacy/policies/linkage.yaml``; they then share the key ``pseudonym/linkage/<group>``.
* The version prefix makes rotation explicit: after ``keys rotate`` new feeds carry ``v2.``
  pseudonyms, and recipients can tell that old and new ones do not join (by design).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from phmx.errors import ConfigError, SpecError
from privacy.hmac_engine import Method, hmac_hex_column, hmac_hex_values

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from privacy.keys import KeyProvider

POLICY_DIR = Path(__file__).with_name("policies")
LINKAGE_FILE = POLICY_DIR / "linkage.yaml"
PSEUDONYM_RE = re.compile(r"^v\d+\.[0-9a-f]{40}$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
HEX_CHARS = 40


@dataclass(frozen=True)
class Linkage:
    """Which recipients share a linkage key (by group name); everyone else has their own."""

    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "(defaults)"

    def group_of(self, recipient: str) -> str | None:
        for group, members in self.groups.items():
            if recipient in members:
                return group
        return None


def load_linkage(path: str | Path | None = None) -> Linkage:
    """Read and validate the linkage configuration (a recipient may be in one group at most)."""
    p = Path(path) if path else LINKAGE_FILE
    if not p.exists():
        return Linkage()
    try:
        doc = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SpecError(f"{p}: not valid YAML ({type(exc).__name__})") from None
    groups_raw = doc.get("groups") or {}
    if not isinstance(groups_raw, dict):
        raise SpecError(f"{p}: key 'groups' must be a mapping of group name to recipients")
    seen: dict[str, str] = {}
    groups: dict[str, tuple[str, ...]] = {}
    for group, members in groups_raw.items():
        if not _NAME_RE.match(str(group)):
            raise SpecError(f"{p}: groups.{group}: group names are lowercase letters, digits, . _ -")
        if not isinstance(members, list) or len(members) < 2:
            raise SpecError(f"{p}: groups.{group}: a linkage group lists at least two recipients")
        for m in members:
            if m in seen:
                raise SpecError(f"{p}: groups.{group}: recipient {m!r} is already in group {seen[m]!r}")
            seen[m] = group
        groups[str(group)] = tuple(str(m) for m in members)
    return Linkage(groups, str(p))


def key_label(recipient: str, linkage: Linkage | None = None) -> str:
    """The HKDF label of the pseudonym key for ``recipient`` (its linkage group's, if any)."""
    if not recipient or not _NAME_RE.match(recipient):
        raise ConfigError(f"recipient id {recipient!r} is not valid",
                          hint="use lowercase letters, digits, '.', '_' or '-'")
    linkage = linkage if linkage is not None else load_linkage()
    group = linkage.group_of(recipient)
    return f"pseudonym/linkage/{group}" if group else f"pseudonym/recipient/{recipient}"


def _key(recipient: str, provider: KeyProvider, version: int | None, linkage: Linkage | None) -> tuple[int, bytes]:
    v = provider.current_version() if version is None else int(version)
    return v, provider.derive(key_label(recipient, linkage), version=v)


def pseudonymize(
    df: DataFrame,
    columns: list[str] | tuple[str, ...],
    recipient: str,
    provider: KeyProvider,
    *,
    version: int | None = None,
    method: Method = "udf",
    linkage: Linkage | None = None,
) -> DataFrame:
    """Replace each of ``columns`` with its pseudonym for ``recipient`` (nulls stay null).

    Runs on the engine: a pandas UDF with the key bound (default), or the native expression
    (``method="native"``; see :mod:`privacy.hmac_engine` for why that is opt-in).
    """
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"pseudonymize: columns not in the frame: {', '.join(missing)}")
    v, key = _key(recipient, provider, version, linkage)
    prefix = f"v{v}."
    return df.withColumns({c: hmac_hex_column(df[c], key, prefix=prefix, hex_chars=HEX_CHARS, method=method)
                           for c in columns})


def pseudonym_values(values: list[Any], recipient: str, provider: KeyProvider, *, version: int | None = None,
                     linkage: Linkage | None = None) -> list[str | None]:
    """The same pseudonyms in plain Python, for small pandas outputs and tests."""
    v, key = _key(recipient, provider, version, linkage)
    return hmac_hex_values([None if x is None else str(x) for x in values], key, prefix=f"v{v}.",
                           hex_chars=HEX_CHARS)


def pseudonymize_pandas(frame: Any, columns: list[str], recipient: str, provider: KeyProvider, *,
                        version: int | None = None, linkage: Linkage | None = None) -> Any:
    """Pseudonymise columns of a pandas DataFrame (copy); same output as :func:`pseudonymize`."""
    out = frame.copy()
    for c in columns:
        vals = [None if (x is None or x != x) else x for x in out[c].tolist()]
        out[c] = pseudonym_values(vals, recipient, provider, version=version, linkage=linkage)
    return out


def is_pseudonym(value: str) -> bool:
    """True when ``value`` has the pseudonym shape (the Safe Harbor checker skips those)."""
    return bool(PSEUDONYM_RE.match(value or ""))
