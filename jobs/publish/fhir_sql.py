"""The plan feed's FHIR resources built on the engine: one JSON document per row, in bounded memory.

Patient, Coverage, Encounter, Immunization, Condition and Flag (open care gaps) from the rows the
consent stage permitted, validated with fhir.resources R4B in the tests and compared there with a
Python oracle that builds the same resources row by row (tests/publish/fhir_oracle.py). Built as
Column expressions: ``to_json(struct(...))`` per
row, ids as keyed pseudonyms computed on the engine (:func:`privacy.pseudonyms.pseudonymize`),
Conditions aggregated per (member, diagnosis code) on the engine. The driver then only streams
finished NDJSON lines into the package (:mod:`jobs.publish.ndjson_stream`), so a plan with
millions of resources never has them in Python memory at once.

Rules the expressions follow so the JSON equals the Python builders' output:

* a field whose value is missing (null, or an empty string where the Python code tested
  truthiness) is left out (``to_json`` drops null fields);
* arrays of structs are built by ``transform`` over string arrays with the element index choosing
  the system, never by concatenating struct arrays (the engine refuses to concatenate struct
  arrays whose fields differ only in nullability).

Each frame has ``id, line, part2, problem``: ``line`` is the JSON document and its newline (so the
driver writes the engine's string buffer as it is), ``part2`` marks a resource whose security labels
carry 42CFRPart2 or SUD (the package then needs the Part 2 notice), ``problem`` names a failed
structural check (null when the resource passes), checked on every resource.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.publish.catalog import describe
from jobs.publish.fhir_measure import HUB, MEASURE_CS

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyspark.sql import Column, DataFrame

    from privacy.keys import KeyProvider

PART2_CODES = ("42CFRPart2", "SUD")
PSEUDONYM_PATTERN = r"^v[0-9]+\.[0-9a-f]{40}$"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
OUT_COLUMNS = ("id", "line", "part2", "problem")
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CVX = "http://hl7.org/fhir/sid/cvx"
CPT = "http://www.ama-assn.org/go/cpt"
CDT = "http://www.ada.org/cdt"
CIN_SYSTEM = f"{HUB}/sid/medi-cal-cin"
RESTRICTED_LABELS = {"SUD", "ETH", "ETHUD", "OPIOIDUD", "42CFRPart2", "PSY", "MH", "BH", "PSYTHPN", "HIV", "STD",
                     "SDV"}
ENCOUNTER_CLASS = {"ED": ("EMER", "emergency"), "IP": ("IMP", "inpatient encounter"),
                   "OP": ("AMB", "ambulatory"), "RX": ("AMB", "ambulatory")}
GENDER = {"M": "male", "F": "female", "U": "unknown", "X": "other"}
RESOURCE_TYPES = ("Patient", "Coverage", "Encounter", "Immunization", "Condition", "Flag", "RiskAssessment")
TIER_CS = f"{HUB}/CodeSystem/phmx-risk-tier"
RISK_METHOD_CS = f"{HUB}/CodeSystem/phmx-risk-model"
POPULATION_CS = f"{HUB}/CodeSystem/ecm-population-of-focus"
PART2_NOTICE = (
    "Notice under 42 CFR 2.32. This record, which has been disclosed to you, is protected by federal "
    "confidentiality rules (42 CFR part 2). These rules prohibit you from using or disclosing this record, or "
    "testimony that describes the information contained in it, in any civil, criminal, administrative or "
    "legislative proceedings by any federal, state or local authority against the patient, unless authorized "
    "by the patient's consent or a court order under 42 CFR 2.64 or 2.65. Any other use or disclosure of this "
    "record is permitted only as 42 CFR part 2 allows (a recipient under a treatment, payment and health care "
    "operations consent may redisclose as the HIPAA Privacy Rule permits, 42 CFR 2.33(b)). A general "
    "authorization for the release of medical or other information is NOT sufficient for this purpose.\n"
)


def _f():  # noqa: ANN202 - the functions module, imported lazily (no engine at import time)
    from pyspark.sql import functions as F

    return F


def _empty() -> Column:
    return _f().array().cast("array<string>")


def present(c: Column | str) -> Column:
    """The value as a string, or null where the Python builders treat it as absent (null or '')."""
    F = _f()
    col = F.col(c) if isinstance(c, str) else c
    s = col.cast("string")
    return F.when(s.isNotNull() & (s != ""), s)


def _date(c: str) -> Column:
    return _f().col(c).cast("date").cast("string")


def _labels(c: Column | str) -> Column:
    F = _f()
    col = F.col(c) if isinstance(c, str) else c
    return F.array_sort(F.array_distinct(F.filter(F.coalesce(col, _empty()), lambda x: x.isNotNull())))


def security(labels: Column | str) -> Column:
    """``meta``: the sorted labels as v3-ActCode codings plus a v3-Confidentiality level (R or N)."""
    F = _f()
    labs = _labels(labels)
    restricted = F.array(*[F.lit(x) for x in sorted(RESTRICTED_LABELS)])
    level = F.when(F.arrays_overlap(labs, restricted), F.lit("R")).otherwise(F.lit("N"))
    codes = F.concat(labs, F.array(level))
    coding = F.transform(codes, lambda x, i: F.struct(
        F.when(i < F.size(labs), F.lit(ACT_CODE)).otherwise(F.lit(CONFIDENTIALITY)).alias("system"),
        x.alias("code")))
    return F.struct(coding.alias("security"))


def _part2(labels: Column | str) -> Column:
    F = _f()
    return F.coalesce(F.arrays_overlap(_labels(labels), F.array(*[F.lit(x) for x in PART2_CODES])), F.lit(False))


def _ref(pid: str = "pid") -> Column:
    F = _f()
    return F.struct(F.concat(F.lit("Patient/"), F.col(pid)).alias("reference"))


def _period(start: str, end: str | None = None) -> Column:
    F = _f()
    s = _date(start)
    if end is None:
        return F.when(s.isNotNull(), F.struct(s.alias("start")))
    e = _date(end)
    return F.when(s.isNotNull() | e.isNotNull(), F.struct(s.alias("start"), e.alias("end")))


def _codings(codes: Column, first_system: Column, rest_system: Column) -> Column:
    """``[{"coding": [{"system": .., "code": c}]}, ...]``: the first code with ``first_system``."""
    F = _f()
    return F.transform(codes, lambda c, i: F.struct(F.array(F.struct(
        F.when(i == 0, first_system).otherwise(rest_system).alias("system"), c.alias("code"))).alias("coding")))


def _problems(**checks: Column) -> Column:
    """Names of the failed checks (``checks`` maps a name to a Column that is true when it passes)."""
    F = _f()
    failed = F.concat_ws(",", *[F.when(~F.coalesce(ok, F.lit(False)), F.lit(name)) for name, ok in checks.items()])
    return F.when(failed != "", failed)


def _ids_ok(*cols: str) -> dict[str, Column]:
    F = _f()
    return {f"{c}_pseudonym": F.coalesce(F.col(c), F.lit("")).rlike(PSEUDONYM_PATTERN) for c in cols}


def _out(df: DataFrame, doc: Column, labels: Column | str, problem: Column, id_col: str = "rid") -> DataFrame:
    F = _f()
    return df.select(F.col(id_col).alias("id"), F.concat(F.to_json(doc), F.lit("\n")).alias("line"),
                     _part2(labels).alias("part2"),
                     problem.alias("problem"))


# ---- resources ---------------------------------------------------------------------------------
def patients(df: DataFrame, recipient: str) -> DataFrame:
    """Patient: pseudonymous id, the plan's own member id, gender, birth date, postal code (no name,
    no CIN: the plan holds the member's demographics under its own id; minimum necessary)."""
    F = _f()
    ident = F.filter(F.array(
        F.struct(F.lit(f"{HUB}/sid/pseudonym/{recipient}").alias("system"), F.col("pid").alias("value")),
        F.struct(F.lit(f"{HUB}/sid/{recipient}/member-id").alias("system"), present("record_id").alias("value"))),
        lambda s: s["value"].isNotNull())
    genders = F.create_map(*[F.lit(x) for kv in sorted(GENDER.items()) for x in kv])
    sex = present("code")
    gender = F.when(sex.isNotNull(), F.coalesce(F.element_at(genders, F.upper(sex)), F.lit("unknown")))
    zip5 = present("code3")
    doc = F.struct(
        F.lit("Patient").alias("resourceType"), F.col("pid").alias("id"), security("security_labels").alias("meta"),
        ident.alias("identifier"), gender.alias("gender"), _date("d1").alias("birthDate"),
        F.when(zip5.isNotNull(), F.array(F.struct(zip5.alias("postalCode"), F.lit("CA").alias("state"))))
        .alias("address"))
    return _out(df, doc, "security_labels", _problems(**_ids_ok("pid")), id_col="pid")


def coverages(df: DataFrame, recipient: str) -> DataFrame:
    F = _f()
    cls = F.array(F.struct(
        F.struct(F.array(F.struct(F.lit(COVERAGE_CLASS).alias("system"), F.lit("plan").alias("code")))
                 .alias("coding")).alias("type"),
        F.coalesce(present("code"), F.lit(recipient)).alias("value")))
    doc = F.struct(
        F.lit("Coverage").alias("resourceType"), F.col("rid").alias("id"), security("security_labels").alias("meta"),
        F.lit("active").alias("status"), _ref().alias("beneficiary"),
        F.array(F.struct(F.lit(recipient).alias("display"))).alias("payor"), cls.alias("class"),
        present("text1").alias("subscriberId"), _period("d1", "d2").alias("period"))
    return _out(df, doc, "security_labels", _problems(**_ids_ok("rid", "pid")))


def encounters(df: DataFrame, recipient: str) -> DataFrame:
    """Encounter from plan claims (kind encounter), county BH services (bh) and dental services."""
    F = _f()
    kind = F.col("kind")
    setting = F.coalesce(present("code"), F.lit("OP"))
    cls_code = F.lit("AMB")
    cls_display = F.lit("ambulatory")
    for key, (code, display) in ENCOUNTER_CLASS.items():
        hit = (kind == "encounter") & (setting == key)
        cls_code = F.when(hit, F.lit(code)).otherwise(cls_code)
        cls_display = F.when(hit, F.lit(display)).otherwise(cls_display)
    procs = F.transform(F.coalesce(F.col("codes"), _empty()), lambda c: c.cast("string"))
    codes = (F.when(kind == "encounter", F.concat(F.array(setting), procs))
             .when(kind == "bh", F.array(F.coalesce(present("code"), F.lit("MH"))))
             .otherwise(F.when(present("code").isNotNull(), F.array(present("code"))).otherwise(_empty())))
    first = (F.when(kind == "encounter", F.lit(f"{HUB}/CodeSystem/encounter-setting"))
             .when(kind == "bh", F.lit(f"{HUB}/CodeSystem/bh-program")).otherwise(F.lit(CDT)))
    types = _codings(codes, first, F.lit(CPT))
    own_claim = (kind == "encounter") & (F.col("source") == recipient) & present("record_id").isNotNull()
    ident = F.when(own_claim, F.array(F.struct(F.lit(f"{HUB}/sid/{recipient}/claim").alias("system"),
                                               present("record_id").alias("value"))))
    dx = F.filter(F.coalesce(F.col("diagnosis_codes"), _empty()), lambda c: c.isNotNull() & (c != ""))
    reason = F.transform(dx, lambda c: F.struct(F.array(F.struct(F.lit(ICD10CM).alias("system"),
                                                                  c.alias("code"))).alias("coding")))
    doc = F.struct(
        F.lit("Encounter").alias("resourceType"), F.col("rid").alias("id"), security("security_labels").alias("meta"),
        F.lit("finished").alias("status"),
        F.struct(F.lit(ACT_CODE).alias("system"), cls_code.alias("code"), cls_display.alias("display"))
        .alias("class"),
        _ref().alias("subject"), F.when(F.size(codes) > 0, types).alias("type"), ident.alias("identifier"),
        _period("d1", "d2").alias("period"), F.when(F.size(dx) > 0, reason).alias("reasonCode"))
    return _out(df, doc, "security_labels", _problems(**_ids_ok("rid", "pid")))


def immunizations(df: DataFrame) -> DataFrame:
    F = _f()
    mvx = present("code2")
    doc = F.struct(
        F.lit("Immunization").alias("resourceType"), F.col("rid").alias("id"),
        security("security_labels").alias("meta"), F.lit("completed").alias("status"),
        F.struct(F.array(F.struct(F.lit(CVX).alias("system"), F.col("code").cast("string").alias("code")))
                 .alias("coding")).alias("vaccineCode"),
        _ref().alias("patient"), _date("d1").alias("occurrenceDateTime"), present("code3").alias("lotNumber"),
        F.when(mvx.isNotNull(), F.struct(F.concat(F.lit("MVX "), mvx).alias("display"))).alias("manufacturer"))
    return _out(df, doc, "security_labels", _problems(**_ids_ok("rid", "pid"), vaccine_code=present("code").isNotNull(),
                                                      occurrence=F.col("d1").isNotNull()))


def flags(df: DataFrame, measures: list[str]) -> DataFrame:
    """Flag per open care gap; ``measures`` are the measure ids present (their names looked up here)."""
    F = _f()
    names = {m: describe(m)[0] for m in measures if m}
    code = F.col("code").cast("string")
    name = code
    if names:
        name = F.coalesce(F.element_at(F.create_map(*[F.lit(x) for kv in sorted(names.items()) for x in kv]), code),
                          code)
    doc = F.struct(
        F.lit("Flag").alias("resourceType"), F.col("rid").alias("id"), security("security_labels").alias("meta"),
        F.lit("active").alias("status"),
        F.array(F.struct(F.array(F.struct(F.lit(FLAG_CATEGORY).alias("system"), F.lit("clinical").alias("code")))
                         .alias("coding"))).alias("category"),
        F.struct(F.array(F.struct(F.lit(MEASURE_CS).alias("system"), code.alias("code"), name.alias("display")))
                 .alias("coding"), F.concat(F.lit("Care gap: "), name).alias("text")).alias("code"),
        _ref().alias("subject"), _period("d1").alias("period"))
    return _out(df, doc, "security_labels", _problems(**_ids_ok("rid", "pid"), code=present("code").isNotNull()))


def risk_assessments(df: DataFrame) -> DataFrame:
    """RiskAssessment per member (rows of kind ``risk``): the rolling-12-month tier (code), its
    window (``occurrencePeriod``: the 12 whole months ending as_of, a month's last day, d1; the
    period label in text1), the model
    and its basis (the points per component, ``codes``) and the total (text2)."""
    F = _f()
    end = F.col("d1").cast("date")
    window = F.struct(F.add_months(F.trunc(end, "month"), -11).cast("string").alias("start"),
                      end.cast("string").alias("end"))
    basis = F.when(F.size("codes") > 0, F.transform("codes", lambda c: F.struct(c.alias("display"))))
    doc = F.struct(
        F.lit("RiskAssessment").alias("resourceType"), F.col("rid").alias("id"), security("security_labels").alias("meta"),
        F.lit("final").alias("status"),
        F.struct(F.array(F.struct(F.lit(RISK_METHOD_CS).alias("system"), F.lit("phmx-points").alias("code")))
                 .alias("coding"), F.concat(F.lit("rolling 12 months, period "), F.col("text1")).alias("text"))
        .alias("method"),
        _ref().alias("subject"), window.alias("occurrencePeriod"), basis.alias("basis"),
        F.array(F.struct(F.struct(F.array(F.struct(F.lit(TIER_CS).alias("system"), F.col("code").alias("code")))
                                  .alias("coding")).alias("qualitativeRisk"))).alias("prediction"),
        F.when(F.col("text2").isNotNull(), F.array(F.struct(F.concat(F.lit("total points "), F.col("text2"))
                                                            .alias("text")))).alias("note"))
    return _out(df, doc, "security_labels", _problems(**_ids_ok("rid", "pid"), code=present("code").isNotNull(),
                                                      as_of=F.col("d1").isNotNull()))


def population_flags(df: DataFrame) -> DataFrame:
    """Flag per ECM population of focus the hub's data show (rows of kind ``pof``), category admin."""
    F = _f()
    doc = F.struct(
        F.lit("Flag").alias("resourceType"), F.col("rid").alias("id"), security("security_labels").alias("meta"),
        F.lit("active").alias("status"),
        F.array(F.struct(F.array(F.struct(F.lit(FLAG_CATEGORY).alias("system"), F.lit("admin").alias("code")))
                         .alias("coding"))).alias("category"),
        F.struct(F.array(F.struct(F.lit(POPULATION_CS).alias("system"), F.col("code").alias("code"))).alias("coding"),
                 F.concat(F.lit("ECM population of focus: "), F.col("code")).alias("text")).alias("code"),
        _ref().alias("subject"))
    return _out(df, doc, "security_labels", _problems(**_ids_ok("rid", "pid"), code=present("code").isNotNull()))


def condition_rows(df: DataFrame) -> DataFrame:
    """(member_id, pid, code, recorded, labels): one row per (member, diagnosis code) of the permitted
    (already redacted) encounters and BH services: first date, program labels (42CFRPart2, PSY) of
    the records it came from, plus the sensitive value sets the code falls in."""
    from consent.disclosure_policy import load_valueset
    from consent.labels import CODE_VALUESETS, code_in

    F = _f()
    prog = F.filter(F.coalesce(F.col("security_labels"), _empty()), lambda x: x.isin("42CFRPart2", "PSY"))
    x = (df.where(F.col("kind").isin("encounter", "bh"))
         .select("member_id", "pid", "d1", prog.alias("prog"), F.explode("diagnosis_codes").alias("code"))
         .where(F.col("code").isNotNull() & (F.col("code") != "")))
    g = x.groupBy("member_id", "pid", "code").agg(
        F.min("d1").alias("recorded"), F.flatten(F.collect_list("prog")).alias("prog"))
    sets = [load_valueset(n) for n in CODE_VALUESETS]
    vs_labels = [F.when(code_in(F.col("code"), vs), F.array(F.lit(vs.label))).otherwise(_empty()) for vs in sets]
    return g.select("member_id", "pid", "code", "recorded",
                    F.array_sort(F.array_distinct(F.concat(F.col("prog"), *vs_labels))).alias("labels"),
                    F.concat(F.lit("condition|"), F.col("member_id"), F.lit("|"), F.col("code")).alias("rid"))


def conditions(df: DataFrame) -> DataFrame:
    """Condition frame from :func:`condition_rows` output (after its ``rid`` was pseudonymised)."""
    F = _f()
    doc = F.struct(
        F.lit("Condition").alias("resourceType"), F.col("rid").alias("id"), security("labels").alias("meta"),
        F.array(F.struct(F.array(F.struct(F.lit(CONDITION_CATEGORY).alias("system"),
                                          F.lit("encounter-diagnosis").alias("code"))).alias("coding")))
        .alias("category"),
        F.struct(F.array(F.struct(F.lit(ICD10CM).alias("system"), F.col("code").alias("code"))).alias("coding"))
        .alias("code"),
        _ref().alias("subject"), _date("recorded").alias("recordedDate"))
    return _out(df, doc, "labels", _problems(**_ids_ok("rid", "pid"), code=present("code").isNotNull()))


# ---- all together --------------------------------------------------------------------------------
def hmac_method() -> str:
    """``native`` on the embedded engine (in-process: no plan is shown or logged anywhere), the
    pandas UDF elsewhere (the native expression would put the padded key in the query plan)."""
    from phmx import settings

    return "native" if settings.load().engine == "sail" else "udf"


def resource_frames(rows: DataFrame, recipient: str, provider: KeyProvider,
                    measures: list[str]) -> dict[str, Callable[[], DataFrame]]:
    """Per resource type, a function giving its (id, json, part2, problem) frame.

    ``rows`` are the permitted rows (ROW_DDL) of members that have their Patient row. Pseudonyms:
    ``pid`` = HMAC(member_id), ``rid`` = HMAC(kind|source|record_id), Condition ids =
    HMAC(condition|member_id|code), all keyed for ``recipient``, as in the Python builders.
    """
    from privacy.pseudonyms import pseudonymize

    F = _f()
    method = hmac_method()
    keyed = rows.select("*", F.col("member_id").alias("pid"),
                        F.concat_ws("|", "kind", "source", "record_id").alias("rid"))
    keyed = pseudonymize(keyed, ["pid", "rid"], recipient, provider, method=method)  # type: ignore[arg-type]

    def of(*kinds: str) -> DataFrame:
        return keyed.where(F.col("kind").isin(*kinds))

    def cond() -> DataFrame:
        c = pseudonymize(condition_rows(keyed), ["rid"], recipient, provider, method=method)  # type: ignore[arg-type]
        return conditions(c)

    return {
        "Patient": lambda: patients(of("patient"), recipient),
        "Coverage": lambda: coverages(of("coverage"), recipient),
        "Encounter": lambda: encounters(of("encounter", "bh", "dental"), recipient),
        "Immunization": lambda: immunizations(of("immunization")),
        "Condition": cond,
        "Flag": lambda: flags(of("gap"), measures).unionByName(population_flags(of("pof"))),
        "RiskAssessment": lambda: risk_assessments(of("risk")),
    }
