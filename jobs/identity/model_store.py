"""Where trained models live: JSON beside the gold tables (local dir or S3, via phmx.storage).

``latest.json`` is what incremental runs and ``explain`` use; each full run also keeps
``model-<run_id>.json`` so a past run's weights can be inspected.
"""

from __future__ import annotations

from jobs.identity.model import Model
from phmx import settings as settings_mod
from phmx import storage


def _root() -> str:
    return storage.join(settings_mod.load().lakehouse_root, "gold", "_identity_model")


def save(model: Model, run_id: str) -> str:
    """Store ``model`` as the latest and under its run id; return the latest's URI."""
    text = model.to_json()
    storage.write_text(storage.join(_root(), f"model-{run_id}.json"), text, content_type="application/json")
    latest = storage.join(_root(), "latest.json")
    storage.write_text(latest, text, content_type="application/json")
    return latest


def load(run_id: str | None = None) -> Model | None:
    """The latest model (or a run's), or None when no full run has trained one yet."""
    uri = storage.join(_root(), f"model-{run_id}.json" if run_id else "latest.json")
    if not storage.exists(uri):
        return None
    return Model.from_json(storage.read_bytes(uri).decode("utf-8"))
