"""Logging without PHI: one configuration for the CLI, jobs and DAG tasks.

Log lines carry counts, table names, submission ids and rule ids. Never a name, a date of
birth, an identifier or a raw record: callers pass those nowhere near a logger.
"""

from __future__ import annotations

import logging

_CONFIGURED = False


def get_logger(name: str) -> logging.Logger:
    """Return a logger under the ``phmx`` namespace, configuring the root handler once."""
    global _CONFIGURED
    if not _CONFIGURED:
        from phmx import settings  # here: settings' own imports may log

        level = (settings.load().log_level or "INFO").upper()
        logger = logging.getLogger("phmx")
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
        _CONFIGURED = True
    return logging.getLogger(name if name.startswith("phmx") else f"phmx.{name}")
