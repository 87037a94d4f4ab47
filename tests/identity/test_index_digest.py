"""The identity index's settings digest follows what the settings say, not where they were read."""

from __future__ import annotations

import dataclasses
import shutil

from jobs.identity import config, index
from privacy.keys import LocalKeyProvider


def test_the_same_settings_read_from_another_install_give_the_same_digest(tmp_path):
    """Found by the DAG under spark-submit: its tasks read the settings from the bundle's
    site-packages, so every gold.identity_index digest differed from an in-process run's and an
    incremental run after a move would have standardised every record again."""
    provider = LocalKeyProvider(tmp_path / "keys")
    here = config.load()
    copy = tmp_path / "elsewhere" / "settings.yaml"
    copy.parent.mkdir()
    shutil.copy(here.source_file, copy)
    there = config.load(copy)
    assert there.source_file != here.source_file
    assert index.settings_digest(there, provider) == index.settings_digest(here, provider)
    changed = dataclasses.replace(there, link_probability=0.9)
    assert index.settings_digest(changed, provider) != index.settings_digest(here, provider)
