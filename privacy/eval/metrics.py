"""Recall and precision of the scrubber on a labelled set, per entity type.

Criteria (what matters for de-identification is that identifier characters are gone):

* recall of a gold span = it is *leak-free*: every letter and digit of it lies inside some
  detected span, whatever type the detector gave it. ``typed_recall`` also needs the type to
  match (reported, not gated).
* precision of a detected span = it overlaps some gold span (any type). ``typed_precision``
  needs the same type.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_SET = Path(__file__).with_name("data") / "eval_set.jsonl"
DIRECT_IDENTIFIERS = ("PERSON", "ADDRESS", "PHONE", "SSN", "CIN", "MRN", "DATE")
RECALL_TARGET = 0.97
#: Presidio entity -> evaluation label.
LABEL_OF = {
    "PERSON": "PERSON", "STREET_ADDRESS": "ADDRESS", "LOCATION": "LOCATION", "ZIP_CODE": "ZIP",
    "PHONE_NUMBER": "PHONE", "EMAIL_ADDRESS": "EMAIL", "US_SSN": "SSN", "MEDI_CAL_CIN": "CIN",
    "MEDICAL_RECORD_NUMBER": "MRN", "DATE_TIME": "DATE", "CA_DRIVER_LICENSE": "DRIVER_LICENSE",
    "AGE_OVER_89": "AGE",
}


@dataclass
class Counts:
    gold: int = 0
    leak_free: int = 0
    typed: int = 0
    predicted: int = 0
    pred_correct: int = 0
    pred_typed: int = 0

    @property
    def recall(self) -> float | None:
        return self.leak_free / self.gold if self.gold else None

    @property
    def typed_recall(self) -> float | None:
        return self.typed / self.gold if self.gold else None

    @property
    def precision(self) -> float | None:
        return self.pred_correct / self.predicted if self.predicted else None

    @property
    def typed_precision(self) -> float | None:
        return self.pred_typed / self.predicted if self.predicted else None


@dataclass
class Report:
    by_label: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    person_by_source: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    sentences: int = 0
    misses: list[dict[str, Any]] = field(default_factory=list)

    def recall_ok(self, target: float = RECALL_TARGET) -> dict[str, bool]:
        return {lab: (self.by_label[lab].recall or 0.0) >= target for lab in DIRECT_IDENTIFIERS}

    def as_dict(self) -> dict[str, Any]:
        def row(c: Counts) -> dict[str, Any]:
            return {"gold": c.gold, "recall": c.recall, "typed_recall": c.typed_recall, "predicted": c.predicted,
                    "precision": c.precision, "typed_precision": c.typed_precision}

        return {"sentences": self.sentences, "labels": {k: row(v) for k, v in sorted(self.by_label.items())},
                "person_by_name_source": {k: row(v) for k, v in sorted(self.person_by_source.items())},
                "recall_target": RECALL_TARGET, "recall_ok": self.recall_ok()}


def load_set(path: str | Path = DEFAULT_SET) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _covered(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    mask = [False] * (end - start)
    for s, e in spans:
        for i in range(max(s, start), min(e, end)):
            mask[i - start] = True
    return all(m or not text[start + i].isalnum() for i, m in enumerate(mask))


def score(records: list[dict[str, Any]], predictions: list[list[Any]], *, keep_misses: int = 50) -> Report:
    """Score detected spans (objects with start, end, entity_type) against gold spans."""
    rep = Report()
    for rec, preds in zip(records, predictions, strict=True):
        rep.sentences += 1
        text = rec["text"]
        pred = [(p.start, p.end, LABEL_OF.get(p.entity_type, p.entity_type)) for p in preds]
        all_pred = [(s, e) for s, e, _ in pred]
        for g in rec["spans"]:
            c = rep.by_label[g["label"]]
            c.gold += 1
            ok = _covered(text, g["start"], g["end"], all_pred)
            typed = _covered(text, g["start"], g["end"], [(s, e) for s, e, lab in pred if lab == g["label"]])
            c.leak_free += ok
            c.typed += typed
            if g["label"] == "PERSON":
                src = rep.person_by_source[(rec.get("meta") or {}).get("name_source") or "unknown"]
                src.gold += 1
                src.leak_free += ok
                src.typed += typed
            if not ok and len(rep.misses) < keep_misses:
                rep.misses.append({"id": rec["id"], "label": g["label"]})
        for s, e, lab in pred:
            c = rep.by_label[lab]
            c.predicted += 1
            overl = [g for g in rec["spans"] if g["start"] < e and s < g["end"]]
            c.pred_correct += bool(overl)
            c.pred_typed += any(g["label"] == lab for g in overl)
    return rep


def evaluate(path: str | Path = DEFAULT_SET) -> tuple[Report, list[dict[str, Any]], list[list[Any]]]:
    """Run the scrubber over the set and score it."""
    from privacy.scrub import analyze_texts

    records = load_set(path)
    preds = analyze_texts([r["text"] for r in records])
    return score(records, preds), records, preds
