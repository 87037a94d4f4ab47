"""Quality gate: the scrubber's recall on the committed labelled set (not a timing)."""

from __future__ import annotations

import json

from privacy.eval.metrics import DIRECT_IDENTIFIERS, RECALL_TARGET, evaluate, load_set
from privacy.eval.sentences import DEFAULT_OUT, generate


def test_committed_set_is_the_generators_output():
    committed = load_set(DEFAULT_OUT)
    assert len(committed) >= 300
    regenerated = json.loads(json.dumps(generate()))
    assert regenerated == committed


def test_recall_targets_on_direct_identifiers():
    report, records, _ = evaluate(DEFAULT_OUT)
    assert report.sentences == len(records) >= 300
    for label in DIRECT_IDENTIFIERS:
        c = report.by_label[label]
        assert c.gold >= 15, label
        assert c.recall >= RECALL_TARGET, f"{label}: recall {c.recall:.3f}"
    # not gated, but a collapse in precision should not go unnoticed
    assert report.by_label["PERSON"].precision >= 0.8
