"""Settings: every location and switch phmx reads, from environment variables, in one place.

The embedded default keeps everything under ``./var`` (or ``$PHMX_HOME``). Any root may be an
``s3://bucket/prefix`` URI instead of a directory; the same code path serves both.

| variable              | default                     | meaning                                   |
|-----------------------|-----------------------------|-------------------------------------------|
| PHMX_HOME             | ./var                       | base for the defaults below               |
| PHMX_LANDING_ROOT     | $PHMX_HOME/landing          | landing/<submitter>/<feed>/<period>/file  |
| PHMX_LAKEHOUSE_ROOT   | $PHMX_HOME/lakehouse        | Delta tables: <layer>/<table>             |
| PHMX_OUTBOX_ROOT      | $PHMX_HOME/outbox           | receipts: outbox/<submitter>/...          |
| PHMX_PUBLISH_ROOT     | $PHMX_HOME/publish          | feeds: publish/<recipient>/<feed>/<period>|
| PHMX_KEYS_DIR         | $PHMX_HOME/keys             | local key files (0600)                    |
| PHMX_LEDGER_ROOT      | $PHMX_LAKEHOUSE_ROOT        | where audit.ledger lives (its own bucket) |
| PHMX_LEDGER_KMS_KEY_ID| $PHMX_KMS_KEY_ID            | KMS key for ledger-bucket writes          |
| PHMX_KMS_KEY_ID       | (unset)                     | KMS key for SSE-KMS writes and envelopes  |
| PHMX_RUNNER           | inprocess                   | inprocess / spark_submit / emr_serverless |
| PHMX_CONSENT_RECIPIENTS | (unset)                   | extra recipients (comma-separated) the    |
|                       |                             | consent stage decides for, beyond mcp_*   |
| SPARK_REMOTE          | (unset)                     | sc://host:port of a Spark Connect server  |
| PHMX_ENGINE           | sail                        | sail (embedded) / connect / classic       |
| PHMX_SHUFFLE_PARTITIONS | 4                         | spark.sql.shuffle.partitions              |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


def _root(env: str, home: str, default_leaf: str) -> str:
    value = os.environ.get(env)
    if value:
        return value.rstrip("/")
    return str(Path(home, default_leaf).resolve())


@dataclass(frozen=True)
class Settings:
    """Resolved locations and switches. Build with :func:`load`; tests use :meth:`with_home`."""

    home: str
    landing_root: str
    lakehouse_root: str
    outbox_root: str
    publish_root: str
    keys_dir: str
    ledger_root: str = ""
    kms_key_id: str | None = None
    ledger_kms_key_id: str | None = None
    runner: str = "inprocess"
    engine: str = "sail"
    spark_remote: str | None = None
    shuffle_partitions: int = 4
    extra: dict[str, str] = field(default_factory=dict)

    def with_home(self, home: str | os.PathLike[str]) -> Settings:
        """The same settings with every default root moved under ``home``."""
        h = str(Path(home).resolve())
        return replace(
            self,
            home=h,
            landing_root=str(Path(h, "landing")),
            lakehouse_root=str(Path(h, "lakehouse")),
            outbox_root=str(Path(h, "outbox")),
            publish_root=str(Path(h, "publish")),
            keys_dir=str(Path(h, "keys")),
            ledger_root=str(Path(h, "lakehouse")),
        )

    def as_env(self) -> dict[str, str]:
        """Environment variables that reproduce these settings in a child process (a DAG run)."""
        env = {
            "PHMX_HOME": self.home,
            "PHMX_LANDING_ROOT": self.landing_root,
            "PHMX_LAKEHOUSE_ROOT": self.lakehouse_root,
            "PHMX_OUTBOX_ROOT": self.outbox_root,
            "PHMX_PUBLISH_ROOT": self.publish_root,
            "PHMX_KEYS_DIR": self.keys_dir,
            "PHMX_LEDGER_ROOT": self.ledger_root,
            "PHMX_RUNNER": self.runner,
            "PHMX_ENGINE": self.engine,
            "PHMX_SHUFFLE_PARTITIONS": str(self.shuffle_partitions),
        }
        if self.kms_key_id:
            env["PHMX_KMS_KEY_ID"] = self.kms_key_id
        if self.ledger_kms_key_id:
            env["PHMX_LEDGER_KMS_KEY_ID"] = self.ledger_kms_key_id
        if self.spark_remote:
            env["SPARK_REMOTE"] = self.spark_remote
        return env


def load() -> Settings:
    """Read settings from the environment (called at each use, so tests may change it)."""
    home = os.environ.get("PHMX_HOME", str(Path("var").resolve()))
    remote = os.environ.get("SPARK_REMOTE") or None
    engine = os.environ.get("PHMX_ENGINE") or ("connect" if remote else "sail")
    lakehouse_root = _root("PHMX_LAKEHOUSE_ROOT", home, "lakehouse")
    kms = os.environ.get("PHMX_KMS_KEY_ID") or None
    return Settings(
        home=str(Path(home).resolve()) if "://" not in home else home,
        landing_root=_root("PHMX_LANDING_ROOT", home, "landing"),
        lakehouse_root=lakehouse_root,
        outbox_root=_root("PHMX_OUTBOX_ROOT", home, "outbox"),
        publish_root=_root("PHMX_PUBLISH_ROOT", home, "publish"),
        keys_dir=_root("PHMX_KEYS_DIR", home, "keys"),
        ledger_root=(os.environ.get("PHMX_LEDGER_ROOT") or lakehouse_root).rstrip("/"),
        kms_key_id=kms,
        ledger_kms_key_id=os.environ.get("PHMX_LEDGER_KMS_KEY_ID") or kms,
        runner=os.environ.get("PHMX_RUNNER", "inprocess"),
        engine=engine,
        spark_remote=remote,
        shuffle_partitions=int(os.environ.get("PHMX_SHUFFLE_PARTITIONS", "4")),
    )
