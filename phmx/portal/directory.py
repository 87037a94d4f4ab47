"""Organisations, accounts and API tokens: who may sign in, and for which organisation.

Two YAML files (see ``phmx.settings.load_portal``):

* organisations (written by the hub's operators): ``id``, ``name``, ``kind`` (submitter,
  recipient, auditor, operator) and, for a submitter, the ``submitter`` id whose landing prefix
  it owns; for a recipient, the ``recipient`` id whose packages it receives. An organisation's
  kind is the role of every account in it.
* accounts (written by ``phmx portal add-user`` / ``add-token``, mode 0600): usernames with
  argon2id password hashes, and API tokens stored as SHA-256 of their secret (a token is 256
  random bits, so a fast hash is enough; a password is not, hence argon2). No default account
  exists and no password is ever stored or printed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from phmx.errors import ConfigError

ID = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{2,127}$")
TOKEN_PREFIX = "phmx"  # noqa: S105 - the public prefix of a token, not a secret
MIN_PASSWORD = 12
_hasher = PasswordHasher()
# A real argon2 hash to verify against when the username is unknown, so that the time taken does
# not tell a caller which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class Role(StrEnum):
    SUBMITTER = "submitter"
    RECIPIENT = "recipient"
    AUDITOR = "auditor"
    OPERATOR = "operator"


class Scope(StrEnum):
    """What an API token may do (a signed-in person has every scope of their role)."""

    SUBMIT = "submit"  # upload files
    READ = "read"  # read receipts, packages, ledger views


class Organisation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str = ""
    kind: Role
    submitter: str | None = None
    recipient: str | None = None

    @model_validator(mode="after")
    def _maps_to_the_hub(self) -> Organisation:
        if not ID.match(self.id):
            raise ValueError("id must be lower-case letters, digits and _ (start with a letter)")
        if self.kind is Role.SUBMITTER and not (self.submitter and ID.match(self.submitter)):
            raise ValueError("a submitter organisation needs `submitter:` (its landing folder name)")
        if self.kind is Role.RECIPIENT and not (self.recipient and ID.match(self.recipient)):
            raise ValueError("a recipient organisation needs `recipient:` (its publish folder name)")
        if self.kind not in (Role.SUBMITTER,) and self.submitter:
            raise ValueError("only a submitter organisation maps to a submitter id")
        if self.kind not in (Role.RECIPIENT,) and self.recipient:
            raise ValueError("only a recipient organisation maps to a recipient id")
        return self


class Account(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str
    organisation: str
    password_hash: str
    created_at: str = ""


class Token(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    organisation: str
    scopes: list[Scope] = Field(default_factory=lambda: [Scope.SUBMIT, Scope.READ])
    secret_sha256: str
    created_at: str = ""


class Principal(BaseModel):
    """Who is calling: an account (signed in) or an API token, and its organisation."""

    model_config = ConfigDict(frozen=True)

    name: str  # username, or "token:<id>" (never a secret)
    organisation: Organisation
    scopes: frozenset[Scope]
    via_token: bool = False

    @property
    def role(self) -> Role:
        return self.organisation.kind


def _read_yaml(path: str, what: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        return {}
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({what})", hint=str(exc).splitlines()[0]) from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping at the top ({what})")
    return doc


def _items(path: str, doc: dict[str, Any], key: str, model: type[BaseModel]) -> list[Any]:
    out = []
    for i, raw in enumerate(doc.get(key) or []):
        try:
            out.append(model.model_validate(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err.get("loc", ()))
            raise ConfigError(f"{path}: {key}[{i}]{'.' + where if where else ''}: {err['msg']}",
                              hint=f"fix entry {i + 1} of `{key}`") from None
    return out


class Directory:
    """The organisations and accounts, loaded once per application (reload by restarting)."""

    def __init__(self, orgs_file: str, users_file: str) -> None:
        self.orgs_file, self.users_file = orgs_file, users_file
        orgs = _items(orgs_file, _read_yaml(orgs_file, "organisations"), "organisations", Organisation)
        self.organisations: dict[str, Organisation] = {}
        for o in orgs:
            if o.id in self.organisations:
                raise ConfigError(f"{orgs_file}: organisation {o.id!r} is listed twice")
            self.organisations[o.id] = o
        doc = _read_yaml(users_file, "accounts")
        self.accounts = {a.username: a for a in _items(users_file, doc, "users", Account)}
        self.tokens = {t.id: t for t in _items(users_file, doc, "tokens", Token)}
        for a in [*self.accounts.values(), *self.tokens.values()]:
            if a.organisation not in self.organisations:
                raise ConfigError(f"{users_file}: {a.organisation!r} is not an organisation in {orgs_file}")

    def authenticate(self, username: str, password: str) -> Principal | None:
        """The account's principal when the password matches, else None (same work either way)."""
        acct = self.accounts.get(username)
        try:
            _hasher.verify(acct.password_hash if acct else _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if acct is None:
            return None
        return self.principal_for(username)

    def principal_for(self, username: str) -> Principal | None:
        acct = self.accounts.get(username)
        if acct is None:
            return None
        return Principal(name=acct.username, organisation=self.organisations[acct.organisation],
                         scopes=frozenset(Scope))

    def principal_for_organisation(self, name: str, organisation: str) -> Principal | None:
        """A person signed in through the identity provider, acting for ``organisation`` (None when
        the organisation is no longer in the directory)."""
        org = self.organisations.get(organisation)
        if org is None:
            return None
        return Principal(name=name, organisation=org, scopes=frozenset(Scope))

    def authenticate_token(self, presented: str) -> Principal | None:
        """``phmx_<id>_<secret>`` -> the token's principal, else None."""
        prefix, _, rest = presented.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or not token_id or not secret:
            return None
        tok = self.tokens.get(token_id)
        digest = hashlib.sha256(secret.encode()).hexdigest()
        if tok is None or not hmac.compare_digest(digest, tok.secret_sha256):
            return None
        return Principal(name=f"token:{tok.id}", organisation=self.organisations[tok.organisation],
                         scopes=frozenset(tok.scopes), via_token=True)


# ---- writing accounts (the CLI) -------------------------------------------------------------------
def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _save(users_file: str, doc: dict[str, Any]) -> None:
    p = Path(users_file)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    tmp.replace(p)


def add_user(orgs_file: str, users_file: str, *, username: str, organisation: str, password: str) -> None:
    """Add (or reset the password of) an account; the password is kept only as an argon2id hash."""
    if not USERNAME.match(username):
        raise ConfigError(f"username {username!r} is not allowed",
                          hint="3-128 characters: lower-case letters, digits, . _ @ -")
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password is shorter than {MIN_PASSWORD} characters", hint="use a longer passphrase")
    d = Directory(orgs_file, users_file)
    if organisation not in d.organisations:
        raise ConfigError(f"no organisation {organisation!r} in {orgs_file}", hint="add it there first")
    doc = _read_yaml(users_file, "accounts")
    users = [u for u in doc.get("users") or [] if u.get("username") != username]
    users.append({"username": username, "organisation": organisation, "password_hash": _hasher.hash(password),
                  "created_at": _now()})
    doc["users"] = users
    _save(users_file, doc)


def add_token(orgs_file: str, users_file: str, *, organisation: str, scopes: list[Scope]) -> str:
    """Create an API token; return it (shown once: only its SHA-256 is kept)."""
    d = Directory(orgs_file, users_file)
    if organisation not in d.organisations:
        raise ConfigError(f"no organisation {organisation!r} in {orgs_file}", hint="add it there first")
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    doc = _read_yaml(users_file, "accounts")
    doc["tokens"] = [*(doc.get("tokens") or []),
                     {"id": token_id, "organisation": organisation, "scopes": [str(s) for s in scopes],
                      "secret_sha256": hashlib.sha256(secret.encode()).hexdigest(), "created_at": _now()}]
    _save(users_file, doc)
    return f"{TOKEN_PREFIX}_{token_id}_{secret}"
