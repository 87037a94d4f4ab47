"""The Safe Harbor transform (45 CFR 164.514(b)(2)) on the engine, driven by a policy.

Every output column comes from a policy field (deny by default: input columns no field names are
dropped). All work is DataFrame expressions except pseudonyms and free-text scrubbing, which are
vectorised UDFs. What each action does, and the paragraph of the rule it serves:

* ``year``: the year of a date; all other date elements go ((b)(2)(i)(C)). The birth year is set
  to null when the person is 90 or over at the as-of date or by the release year (a birth year
  of 1934 published in 2026 says "over 89" by itself).
* ``age``: age in whole years at the policy's ``as_of`` date; 90 and over become ``"90+"``
  (or 90 with ``as: int``) ((C)).
* ``age_band``: the band containing the age; policies may not split ages 90 and over.
* ``zip3``: the first three ZIP digits, ``"000"`` for areas on the restricted list version the
  policy names ((B)); anything that is not a 5- or 9-digit ZIP becomes null.
* ``pseudonym``: keyed HMAC per recipient (privacy.pseudonyms).
* ``generalise``: a value map with a default, or truncation (e.g. ICD-10 to its category).
* ``scrub``: free text through Presidio (privacy.scrub), entities replaced by placeholders.
* ``keep`` / ``drop``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from phmx.errors import ConfigError, PrivacyError
from phmx.log import get_logger
from privacy.deid_policy import FieldRule, Policy, _is_literal_date, load_policy, restricted_zip3

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from privacy.keys import KeyProvider

log = get_logger("phmx.privacy.safe_harbor")

AGE_TOP = 90
AGE_TOP_LABEL = "90+"


def _as_date(df: DataFrame, name: str) -> Column:
    from pyspark.sql import functions as F

    dtype = df.schema[name].dataType.simpleString()
    if dtype == "date":
        return F.col(name)
    if dtype.startswith("timestamp"):
        return F.to_date(F.col(name))
    if dtype == "string":
        return F.to_date(F.substring(F.trim(F.col(name)), 1, 10))
    raise ConfigError(f"column {name!r} has type {dtype}; a date, timestamp or ISO string is needed")


def age_years(birth: Column, ref: Column) -> Column:
    """Whole years from ``birth`` to ``ref`` (both dates); null when either is null or negative."""
    from pyspark.sql import functions as F

    before_birthday = (F.month(ref) < F.month(birth)) | (
        (F.month(ref) == F.month(birth)) & (F.dayofmonth(ref) < F.dayofmonth(birth)))
    age = F.year(ref) - F.year(birth) - F.when(before_birthday, 1).otherwise(0)
    return F.when(age >= 0, age)


def zip3_expr(col: Column, restricted: frozenset[str], *, numeric: bool = False) -> Column:
    """First three digits of a 5- or 9-digit ZIP; ``000`` when restricted; null otherwise."""
    from pyspark.sql import functions as F

    text = F.lpad(col.cast("string"), 5, "0") if numeric else F.trim(col.cast("string"))
    z3 = F.regexp_extract(text, r"^(\d{3})\d{2}(?:-?\d{4})?$", 1)
    return (F.when(z3 == "", F.lit(None).cast("string"))
            .when(z3.isin(sorted(restricted)), F.lit("000"))
            .otherwise(z3))


def _age_band_expr(age: Column, rule: FieldRule) -> Column:
    from pyspark.sql import functions as F

    expr = None
    for band in rule.options["bands"]:
        cond = (age >= band.lo) if band.hi is None else ((age >= band.lo) & (age <= band.hi))
        expr = F.when(cond, F.lit(band.label)) if expr is None else expr.when(cond, F.lit(band.label))
    return expr.otherwise(F.lit(None).cast("string"))  # type: ignore[union-attr]


def _ref_date(df: DataFrame, policy: Policy, today: str | None) -> Column:
    from pyspark.sql import functions as F

    as_of = policy.age_as_of or "today"
    if as_of == "today":
        return F.lit(today or datetime.now(UTC).date().isoformat()).cast("date")
    if _is_literal_date(as_of):
        return F.lit(as_of).cast("date")
    if as_of not in df.columns:
        raise ConfigError(f"{policy.source_file}: age.as_of column {as_of!r} is not in the input")
    return _as_date(df, as_of)


def apply_policy(
    df: DataFrame,
    policy: Policy | str,
    *,
    recipient: str | None = None,
    provider: KeyProvider | None = None,
    today: str | None = None,
    pseudonym_method: str = "udf",
) -> DataFrame:
    """Return ``df`` de-identified by ``policy`` (a Policy or a policy name under privacy/policies/).

    ``recipient`` and ``provider`` are needed when the policy has pseudonym fields. ``today``
    (ISO date) fixes the reference date of ``as_of: today`` for reproducible runs.
    """
    from pyspark.sql import functions as F

    if isinstance(policy, str):
        policy = load_policy(policy)
    missing = sorted(s for s in policy.sources if s not in df.columns)
    if missing:
        raise ConfigError(f"{policy.source_file}: input lacks column(s) {', '.join(missing)}")
    dropped = sorted(set(df.columns) - policy.sources)
    if dropped:
        log.info("policy %s drops %d input column(s) by default: %s", policy.output, len(dropped), ", ".join(dropped))

    age_col: Column | None = None
    over89: Column | None = None
    if policy.age_birth_date:
        birth = _as_date(df, policy.age_birth_date)
        age_col = age_years(birth, _ref_date(df, policy, today))
        # A birth year is "indicative of" 90+ if the person is 90+ at the as-of date, or would
        # be by the release year (anyone can subtract the year; the checker does the same).
        release_year = int((today or datetime.now(UTC).date().isoformat())[:4])
        over89 = (age_col >= AGE_TOP) | (F.year(birth) <= release_year - AGE_TOP)

    restricted = restricted_zip3(policy.zip3_list)
    pseudo_fields: list[str] = []
    exprs: dict[str, Column] = {}
    for rule in policy.fields:
        if rule.action == "drop":
            continue
        src = F.col(rule.source)
        dtype = df.schema[rule.source].dataType.simpleString()
        if rule.action == "keep":
            out = src
        elif rule.action == "year":
            year = F.year(_as_date(df, rule.source))
            if over89 is not None and rule.source == policy.age_birth_date:
                year = F.when(over89, F.lit(None)).otherwise(year)
            out = year.cast("int")
        elif rule.action == "zip3":
            out = zip3_expr(src, restricted, numeric=dtype in ("int", "bigint", "smallint"))
        elif rule.action in ("age", "age_band"):
            if rule.options.get("from_birth_date"):
                if age_col is None:  # the policy loader sets age_birth_date for such a rule
                    raise ConfigError(f"{policy.source_file}: {rule.name}: from_birth_date needs a birth-date field")
                age = age_col
            else:
                age = F.when(src.cast("int") >= 0, src.cast("int"))
            if rule.action == "age":
                if rule.options.get("as", "label") == "int":
                    out = F.least(age, F.lit(AGE_TOP)).cast("int")
                else:
                    out = F.when(age >= AGE_TOP, F.lit(AGE_TOP_LABEL)).otherwise(age.cast("string"))
            else:
                out = _age_band_expr(age, rule)
        elif rule.action == "pseudonym":
            out = src.cast("string")
            pseudo_fields.append(rule.name)
        elif rule.action == "generalise":
            text = src.cast("string")
            if "truncate" in rule.options:
                text = F.substring(text, 1, int(rule.options["truncate"]))
            if "map" in rule.options:
                mapping: dict[str, str | None] = rule.options["map"]
                default = rule.options.get("default")
                default_col = F.lit(None).cast("string") if default is None else F.lit(str(default))
                expr = None
                for k, v in mapping.items():
                    val = F.lit(None).cast("string") if v is None else F.lit(v)
                    expr = F.when(text == k, val) if expr is None else expr.when(text == k, val)
                text = F.when(text.isNull(), F.lit(None).cast("string")).otherwise(
                    expr.otherwise(default_col) if expr is not None else default_col)
            out = text
        elif rule.action == "scrub":
            from privacy.scrub import scrub_column

            out = scrub_column(src.cast("string"))
        else:  # pragma: no cover - the loader rejects unknown actions
            raise ConfigError(f"unknown action {rule.action}")
        exprs[rule.name] = out.alias(rule.name)

    result = df.select(*exprs.values())
    if pseudo_fields:
        if not recipient or provider is None:
            raise ConfigError(f"{policy.source_file}: pseudonym fields need a recipient and a key provider")
        from privacy.pseudonyms import pseudonymize

        result = pseudonymize(result, pseudo_fields, recipient, provider, method=pseudonym_method)  # type: ignore[arg-type]
    bad = [f.name for f in result.schema.fields
           if f.dataType.simpleString() in ("date", "timestamp", "timestamp_ntz")]
    if bad:
        raise PrivacyError(f"policy {policy.output} would publish full dates in {', '.join(bad)}",
                           hint="use action 'year' for date fields")
    return result


def apply_policy_pandas(frame: Any, policy: Policy | str, *, recipient: str | None = None,
                        provider: KeyProvider | None = None, today: str | None = None) -> Any:
    """The same transform for a small pandas frame, by running it on the engine."""
    from phmx.engine import get_spark

    spark = get_spark()
    return apply_policy(spark.createDataFrame(frame), policy, recipient=recipient, provider=provider,
                        today=today).toPandas()
