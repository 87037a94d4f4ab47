"""The encrypted identity index gives an incremental run what the plain features give a full run:
the same candidate pairs from the keyed blocking keys, the same term frequencies from the keyed
name keys, and the same standardised features back from the ciphertexts."""

from __future__ import annotations

import pandas as pd

from jobs.identity import blocking, index, linkage
from jobs.identity.stage import stage_settings
from phmx import lakehouse
from phmx.synth import identity_records
from privacy.crypto import is_ciphertext
from privacy.keys import get_provider


def test_keyed_blocking_frequencies_and_features_match_the_plain_ones(spark, phmx_home, population):
    person, _ = population
    settings = stage_settings()
    provider = get_provider()
    scratch = lakehouse.Scratch(spark, "identity_index_test")
    try:
        std = linkage.prepare(identity_records.to_spark(spark, person), scratch, settings)
        fps = std.select("source", "source_person_id", std["fingerprint"].cast("string").alias("source_fp"))
        rows = scratch.put(index.rows(std, fps, settings, provider, digest=index.settings_digest(settings, provider),
                                      run_id="t"), "rows")
        stored = rows.toPandas()
        assert stored["features"].map(is_ciphertext).all()
        assert all(len(bk) == len(settings.rules) for bk in stored["bk"])

        # Blocking: the same pairs, first rules and rule masks from the keyed keys.
        def pairs(frame, s) -> pd.DataFrame:  # noqa: ANN001
            p, _ = blocking.candidate_pairs(frame, s)
            return p.toPandas().sort_values(["rid_l", "rid_r"]).reset_index(drop=True)

        plain = pairs(std, settings)
        frame, keyed = index.blocking_frame(rows, settings)
        assert len(plain) > 100
        pd.testing.assert_frame_equal(plain, pairs(scratch.put(frame, "keys"), keyed))

        # Term frequencies from equal keyed names: the same values.
        tf_cols = [f"tf_{c}" for c in index.tf_columns(settings)]
        want = std.select("rid", *tf_cols).toPandas().sort_values("rid").reset_index(drop=True)
        got = index.term_frequencies(rows, settings).toPandas()[["rid", *tf_cols]].sort_values("rid") \
            .reset_index(drop=True)
        pd.testing.assert_frame_equal(want, got)

        # Features decrypted and unpacked: the standardised rows themselves.
        cols = ["rid", "source", "source_person_id", "fingerprint", *index.feature_columns(std)]
        back = index.features(rows, index.feature_schema(std), provider).select(*cols).toPandas()
        pd.testing.assert_frame_equal(std.select(*cols).toPandas().sort_values("rid").reset_index(drop=True),
                                      back.sort_values("rid").reset_index(drop=True))
    finally:
        scratch.drop()
