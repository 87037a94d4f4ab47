"""One user-facing error family with stable exit codes, printed in one place (``phmx.cli``).

Messages name the file, row, field and rule; they never carry an identifier's value.
"""

from __future__ import annotations


class PhmxError(Exception):
    """Base of every error phmx raises on purpose. ``exit_code`` is stable across releases."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} (how to fix: {self.hint})" if self.hint else base


class ConfigError(PhmxError):
    """A setting, spec or mapping file is wrong."""

    exit_code = 10


class SpecError(ConfigError):
    """A feed spec, policy or value set does not validate; names the file and key."""

    exit_code = 11


class ValidationFailed(PhmxError):
    """A submission was rejected by validation (``phmx validate`` exits with this)."""

    exit_code = 20


class ValidationPartial(PhmxError):
    """``phmx validate``: the file would be accepted with errors (some rows quarantined)."""

    exit_code = 21


class EngineError(PhmxError):
    """The Spark engine failed; carries the stage, table and SQL that failed."""

    exit_code = 30

    def __init__(self, message: str, *, stage: str = "", table: str = "", sql: str = "") -> None:
        detail = ", ".join(f"{k}={v}" for k, v in (("stage", stage), ("table", table)) if v)
        super().__init__(f"{message} [{detail}]" + (f"\nSQL: {sql}" if sql else ""))
        self.stage, self.table, self.sql = stage, table, sql


class StorageError(PhmxError):
    """Reading or writing a landing, outbox or publish location failed."""

    exit_code = 40


class LedgerError(PhmxError):
    """The audit ledger failed to verify or to append."""

    exit_code = 50


class ConsentError(PhmxError):
    """A consent record or policy could not be evaluated."""

    exit_code = 60


class PrivacyError(PhmxError):
    """A de-identification check failed (e.g. an identifier found in an output)."""

    exit_code = 70
