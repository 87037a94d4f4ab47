"""Security labels on rows: value sets as data (consent/valuesets/) and engine expressions.

The conform stage calls :func:`label_expr` for every silver event row::

    df.withColumn("security_labels", label_expr("diagnosis_codes", spec.labels))
      .withColumn("sensitivity", sensitivity_expr("security_labels"))

Feed-level labels (from the feed spec, e.g. ``[SUD, ETH, 42CFRPart2]`` for CalOMS-like feeds,
``[MH, PSY]`` for county mental health) label the whole record; diagnosis codes add the class
label of each value set they fall in (ICD-10-CM F10-F19 except F17 -> SUD; F20-F48 -> MH;
B20, Z21, O98.7 -> HIV; A50-A64 -> STD; abuse codes -> SDV). Program labels (42CFRPart2, PSY)
come only from feeds, never from codes: a Part 2 record is a record of a Part 2 program, not
any record that mentions a substance use diagnosis. Labels travel with rows into gold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from consent.disclosure_policy import Policy, ValueSet, load_policy, load_valueset

if TYPE_CHECKING:
    from pyspark.sql import Column

# Value set -> label added when a row has a code in it (order = output order).
CODE_VALUESETS: tuple[str, ...] = ("icd10cm_sud", "icd10cm_mh", "icd10cm_hiv", "icd10cm_std", "icd10cm_sdv")


def _col(c: str | Column) -> Column:
    from pyspark.sql import functions as F

    return F.col(c) if isinstance(c, str) else c


def normalise_code(code: Column) -> Column:
    """Upper case, dots and spaces removed (F11.20 -> F1120)."""
    from pyspark.sql import functions as F

    return F.upper(F.regexp_replace(code, r"[.\s]", ""))


def code_in(code: Column, vs: ValueSet) -> Column:
    """Whether one code (a Column) is in a value set: prefix match, minus the exclusions."""
    from pyspark.sql import functions as F

    c = normalise_code(code)
    # One anchored regular expression per list, not a chain of ORs: a long value set would
    # otherwise nest deeper than Spark Connect's protobuf decoder allows.
    inc = c.rlike(_prefix_regex(vs.include)) if vs.include else F.lit(False)
    exc = c.rlike(_prefix_regex(vs.exclude)) if vs.exclude else F.lit(False)
    return F.coalesce(inc & ~exc, F.lit(False))


def _prefix_regex(prefixes: tuple[str, ...] | list[str]) -> str:
    import re

    return "^(" + "|".join(re.escape(p) for p in prefixes) + ")"


def any_code_in(codes: str | Column, vs: ValueSet) -> Column:
    from pyspark.sql import functions as F

    return F.coalesce(F.exists(F.coalesce(_col(codes), F.array().cast("array<string>")), lambda x: code_in(x, vs)),
                      F.lit(False))


def drop_codes(codes: str | Column, vs: ValueSet) -> Column:
    """The code array without codes in the value set (null stays null)."""
    from pyspark.sql import functions as F

    return F.filter(_col(codes), lambda x: ~code_in(x, vs))


def label_expr(dx_codes_col: str | Column | None, feed_labels: list[str] | tuple[str, ...]) -> Column:
    """``array<string>`` of security labels: the feed's labels plus one per value set the codes hit."""
    from pyspark.sql import functions as F

    parts = [F.array(*[F.lit(x) for x in feed_labels]).cast("array<string>")]
    if dx_codes_col is not None:
        for name in CODE_VALUESETS:
            vs = load_valueset(name)
            parts.append(F.when(any_code_in(dx_codes_col, vs), F.array(F.lit(vs.label))).otherwise(
                F.array().cast("array<string>")))
    return F.array_sort(F.array_distinct(F.concat(*parts)))


def has_labels(labels: str | Column, *, any_of: tuple[str, ...] = (), all_of: tuple[str, ...] = ()) -> Column:
    from pyspark.sql import functions as F

    arr = F.coalesce(_col(labels), F.array().cast("array<string>"))
    cond = F.lit(True)
    if any_of:
        cond = cond & F.arrays_overlap(arr, F.array(*[F.lit(x) for x in any_of]))
    for x in all_of:
        cond = cond & F.array_contains(arr, F.lit(x))
    return F.coalesce(cond, F.lit(False))


def class_expr(labels: str | Column, data_class: str, policy: Policy | None = None) -> Column:
    """Whether a row with these labels is in a policy data class (GENERAL: every row)."""
    from pyspark.sql import functions as F

    policy = policy or load_policy()
    dc = policy.classes[data_class]
    if not dc.any_labels and not dc.all_labels:
        return F.lit(True)
    return has_labels(labels, any_of=dc.any_labels, all_of=dc.all_labels)


def sensitivity_expr(labels: str | Column) -> Column:
    """``sud`` / ``mh`` / ``general`` from labels (the feed spec's sensitivity vocabulary)."""
    from pyspark.sql import functions as F

    policy = load_policy()
    sud = policy.classes["SUD"]
    mh = policy.classes["MH"]
    return F.when(has_labels(labels, any_of=sud.any_labels), F.lit("sud")) \
        .when(has_labels(labels, any_of=mh.any_labels), F.lit("mh")).otherwise(F.lit("general"))
