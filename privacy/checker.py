"""The Safe Harbor checker: scan any output for identifiers that should not be there.

It is the last gate before publishing: the publish stage calls :func:`assert_clean`, which
raises ``PrivacyError`` (exit code 70) so the feed is not written. Findings name the column,
the identifier class and how many rows matched; never a value.

What it looks for (45 CFR 164.514(b)(2)(i) letters in brackets):
names from a given-name list (A); full 5/9-digit ZIPs (B); full dates, month+year, date-typed
columns (C); ages over 89 and birth years implying them (C); phone/fax numbers (D, E); email
addresses (F); SSNs (G); MRNs with their context word (H); Medi-Cal CINs (I); long digit runs
(account numbers and other unique numbers, J, R); California driver licence shapes (K); VIN-like
codes (L); URLs (N); IPv4/IPv6 addresses (O); hub ciphertexts (an encrypted identifier is still
derived from one). Columns the policy marks as code columns (procedure codes, NDCs...) are exempt
from the number patterns, and values that are pseudonyms are skipped.

The same patterns run on the engine (one aggregation pass, ``rlike``) and on pandas/Arrow.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from phmx.errors import PrivacyError
from phmx.log import get_logger

log = get_logger("phmx.privacy.checker")

GIVEN_NAMES_FILE = Path(__file__).with_name("data") / "given_names.txt"
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"


@dataclass(frozen=True)
class Pattern:
    """One identifier pattern: its class, the Safe Harbor letter, and whether codes are exempt."""

    identifier: str
    letter: str
    regex: str
    numeric: bool = False  # exempt in code columns


PATTERNS: tuple[Pattern, ...] = (
    Pattern("ssn", "G", r"\b\d{3}[- ]\d{2}[- ]\d{4}\b"),
    Pattern("cin", "I", r"\b9\d{7}[A-Za-z]\b"),
    Pattern("zip5", "B", r"\b\d{5}(?:-\d{4})?\b", numeric=True),
    Pattern("full_date", "C", r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{1,2}/\d{4}\b"),
    Pattern("full_date", "C", rf"(?i)\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b"
                              rf"|\b\d{{1,2}}\s+{_MONTH},?\s+\d{{4}}\b|\b{_MONTH},?\s+\d{{4}}\b"),
    Pattern("phone", "D/E", r"(?:\(\d{3}\)\s?|\b\d{3}[-. ])\d{3}[-. ]\d{4}\b|\+1[-. ]?\d{3}[-. ]?\d{3}[-. ]?\d{4}\b"),
    Pattern("email", "F", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    Pattern("mrn", "H", r"(?i)\b(?:mrn|medical record(?:\s+(?:number|no\.?|#))?)\s*[:#]?\s*[A-Za-z0-9-]*\d[A-Za-z0-9-]{3,}"),
    Pattern("long_number", "J/R", r"\b\d{7,}\b", numeric=True),
    Pattern("license", "K", r"\b[A-Za-z]\d{7}\b", numeric=True),
    Pattern("vehicle_id", "L", r"\b[A-HJ-NPR-Z0-9]{17}\b", numeric=True),
    Pattern("url", "N", r"(?i)\bhttps?://\S+|\bwww\.[A-Za-z0-9-]+\.\S+"),
    Pattern("ip_address", "O",
            r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"
            r"|\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b"),
    Pattern("ciphertext", "R", r"^enc1\.\d+\.[A-Za-z0-9_-]{20,}$"),
)
PSEUDONYM_REGEX = r"^v\d+\.[0-9a-f]{40}$"
_AGE_NAME = re.compile(r"(^|_)age(_years)?$", re.I)
_BIRTH_YEAR_NAME = re.compile(r"birth_?year|year_?of_?birth|^yob$", re.I)
_ZIP_NAME = re.compile(r"(^|_)(zip|zipcode|postal_code|zip5)$", re.I)
_SUSPICIOUS_NAME = re.compile(
    r"(^|_)(ssn|social_security|given_name|family_name|first_name|last_name|full_name|street|address_line|"
    r"phone|fax|email|mrn|medical_record_number|birth_date|dob|ip_address|url|license_number|vin)(_|$)", re.I)


@dataclass(frozen=True)
class Finding:
    """An identifier class found in a column: how many rows, which rule. Never a value."""

    column: str
    identifier: str
    rows: int
    rule: str
    severity: str = "error"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.severity}: column {self.column!r}: {self.identifier} in {self.rows} row(s) ({self.rule})"


@lru_cache(maxsize=1)
def given_names() -> tuple[str, ...]:
    lines = GIVEN_NAMES_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(n.strip() for n in lines if n.strip() and not n.startswith("#"))


@lru_cache(maxsize=1)
def names_regex() -> str:
    return r"\b(?:" + "|".join(re.escape(n) for n in given_names()) + r")\b"


def _patterns_for(column: str, code_columns: set[str], names: bool) -> list[Pattern]:
    pats = [p for p in PATTERNS if not (p.numeric and column in code_columns)]
    if names and column not in code_columns:
        pats.append(Pattern("given_name", "A", names_regex()))
    return pats


def _year_now() -> int:
    return datetime.now(UTC).year


def check_safe_harbor(data: Any, *, code_columns: set[str] | list[str] | tuple[str, ...] = (),
                      names: bool = True, skip_columns: set[str] | list[str] | tuple[str, ...] = (),
                      current_year: int | None = None) -> list[Finding]:
    """Scan a Spark DataFrame, pandas DataFrame or pyarrow Table; return findings (empty = clean).

    ``code_columns``: columns holding standard codes (CPT, NDC, LOINC...) that are exempt from
    the number patterns. ``skip_columns``: columns not to scan at all (e.g. a numeric
    ``numerator`` in an aggregate; they are still checked by type).
    """
    codes, skip = set(code_columns), set(skip_columns)
    year = current_year or _year_now()
    if _is_spark(data):
        findings = _check_spark(data, codes, skip, names, year)
    else:
        frame = data.to_pandas() if not hasattr(data, "iloc") and hasattr(data, "to_pandas") else data
        findings = _check_pandas(frame, codes, skip, names, year)
    findings += [Finding(c, "identifier_column_name", 0, "column name suggests a direct identifier", "warning")
                 for c in _columns(data) if _SUSPICIOUS_NAME.search(c)]
    log.info("Safe Harbor check: %d finding(s)", len(findings))
    return findings


def _is_spark(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and type(data).__module__.startswith("pyspark")


def _columns(data: Any) -> list[str]:
    if not _is_spark(data) and hasattr(data, "column_names"):
        return list(data.column_names)
    return [str(c) for c in data.columns]


def assert_clean(data: Any, *, what: str = "output", **kwargs: Any) -> None:
    """Raise PrivacyError listing error findings (column, class, rows), so the publish fails."""
    findings = [f for f in check_safe_harbor(data, **kwargs) if f.severity == "error"]
    if findings:
        detail = "; ".join(f"{f.column}: {f.identifier} x{f.rows}" for f in findings[:20])
        raise PrivacyError(f"{what} failed the Safe Harbor check ({len(findings)} finding(s)): {detail}",
                           hint="fix the de-identification policy for these columns; see docs/privacy.md")


# ---- engine --------------------------------------------------------------------------------

def _check_spark(df: Any, codes: set[str], skip: set[str], names: bool, year: int) -> list[Finding]:
    from pyspark.sql import functions as F

    aggs: list[Any] = []
    meta: list[tuple[str, str, str, str]] = []  # column, identifier, rule, severity
    for field in df.schema.fields:
        c, t = field.name, field.dataType.simpleString()
        col = F.col(f"`{c}`")
        if t in ("date", "timestamp", "timestamp_ntz"):
            aggs.append(F.count(col))
            meta.append((c, "full_date", "date-typed column (C)", "error"))
            continue
        if c in skip:
            continue
        if t in ("tinyint", "smallint", "int", "bigint", "float", "double") or t.startswith("decimal"):
            if _AGE_NAME.search(c):
                aggs.append(F.sum(F.when(col > 89, 1).otherwise(0)))
                meta.append((c, "age_over_89", "ages over 89 must be one 90+ category (C)", "error"))
            if _BIRTH_YEAR_NAME.search(c):
                aggs.append(F.sum(F.when(col <= year - 90, 1).otherwise(0)))
                meta.append((c, "birth_year_implies_90plus", "birth year implies age 90+ (C)", "error"))
            if _ZIP_NAME.search(c):
                aggs.append(F.sum(F.when(col >= 1000, 1).otherwise(0)))
                meta.append((c, "zip5", "numeric full ZIP (B)", "error"))
            continue
        if t.startswith("array"):
            col = F.concat_ws(" ", col.cast("array<string>"))
        elif t != "string":
            continue
        text = F.when(~col.rlike(PSEUDONYM_REGEX), col)
        if _AGE_NAME.search(c):
            aggs.append(F.sum(F.when(F.regexp_extract(text, r"^\s*(\d{1,3})\s*$", 1).try_cast("int") > 89, 1).otherwise(0)))
            meta.append((c, "age_over_89", "ages over 89 must be one 90+ category (C)", "error"))
        if _BIRTH_YEAR_NAME.search(c):
            aggs.append(F.sum(F.when(F.regexp_extract(text, r"^\s*(\d{4})\s*$", 1).try_cast("int") <= year - 90, 1)
                              .otherwise(0)))
            meta.append((c, "birth_year_implies_90plus", "birth year implies age 90+ (C)", "error"))
        for p in _patterns_for(c, codes, names):
            aggs.append(F.sum(F.when(text.rlike(p.regex), 1).otherwise(0)))
            meta.append((c, p.identifier, f"pattern {p.identifier} ({p.letter})", "error"))
    if not aggs:
        return []
    row = df.agg(*[a.alias(f"m{i}") for i, a in enumerate(aggs)]).collect()[0]
    return _merge([(m, int(row[f"m{i}"] or 0)) for i, m in enumerate(meta)])


def _merge(results: list[tuple[tuple[str, str, str, str], int]]) -> list[Finding]:
    """One finding per (column, identifier), the largest count of its patterns."""
    best: dict[tuple[str, str], Finding] = {}
    for (c, ident, rule, sev), n in results:
        if n <= 0:
            continue
        prev = best.get((c, ident))
        if prev is None or n > prev.rows:
            best[(c, ident)] = Finding(c, ident, n, rule, sev)
    return sorted(best.values(), key=lambda f: (f.column, f.identifier))


# ---- pandas / Arrow --------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _compiled(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def _check_pandas(frame: Any, codes: set[str], skip: set[str], names: bool, year: int) -> list[Finding]:
    import pandas as pd

    results: list[tuple[tuple[str, str, str, str], int]] = []
    pseudo = _compiled(PSEUDONYM_REGEX)
    for c in frame.columns:
        s = frame[c]
        c = str(c)
        if pd.api.types.is_datetime64_any_dtype(s) or (
                s.dtype == object and s.map(lambda v: hasattr(v, "isoformat")).any()):
            results.append(((c, "full_date", "date-typed column (C)", "error"), int(s.notna().sum())))
            continue
        if c in skip:
            continue
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            if _AGE_NAME.search(c):
                results.append(((c, "age_over_89", "ages over 89 must be one 90+ category (C)", "error"),
                                int((s > 89).sum())))
            if _BIRTH_YEAR_NAME.search(c):
                results.append(((c, "birth_year_implies_90plus", "birth year implies age 90+ (C)", "error"),
                                int((s <= year - 90).sum())))
            if _ZIP_NAME.search(c):
                results.append(((c, "zip5", "numeric full ZIP (B)", "error"), int((s >= 1000).sum())))
            continue
        values = s.dropna().map(lambda v: " ".join(map(str, v)) if isinstance(v, (list, tuple)) or
                                hasattr(v, "tolist") else str(v))
        values = values[~values.map(lambda v: bool(pseudo.match(v)))]
        if values.empty:
            continue
        if _AGE_NAME.search(c):
            nums = pd.to_numeric(values.str.strip(), errors="coerce")
            results.append(((c, "age_over_89", "ages over 89 must be one 90+ category (C)", "error"),
                            int((nums > 89).sum())))
        if _BIRTH_YEAR_NAME.search(c):
            nums = pd.to_numeric(values.str.strip(), errors="coerce")
            results.append(((c, "birth_year_implies_90plus", "birth year implies age 90+ (C)", "error"),
                            int((nums <= year - 90).sum())))
        for p in _patterns_for(c, codes, names):
            rx = _compiled(p.regex)
            n = int(values.map(lambda v, rx=rx: rx.search(v) is not None).sum())
            results.append(((c, p.identifier, f"pattern {p.identifier} ({p.letter})", "error"), n))
    return _merge(results)


def read_table(path: str) -> Any:
    """Read a CSV or Parquet file as pandas (all CSV columns as strings: what a recipient sees)."""
    import pandas as pd

    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq") or p.is_dir():
        return pd.read_parquet(p)
    if p.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""])
    raise PrivacyError(f"cannot check {p.name}: give a .csv or .parquet file")
