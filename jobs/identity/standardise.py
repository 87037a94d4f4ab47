"""Standardisation on the engine: raw person fields -> comparable features, in one pass.

Every function here returns a pyspark ``Column`` built from built-in SQL functions (the subset
Spark Connect serves and the embedded engine has), so 1M records standardise in seconds and
the stage, the ``link`` command and ``explain`` share one definition.

Features (see :data:`jobs.identity.config.FEATURES`):
``gn`` first given-name token; ``gn_canon`` the nickname groups it belongs to (``|``-separated);
``gn_key`` the first of them (a blocking key); ``gn_sdx`` Soundex;
``gn_initial``; ``mi`` middle initial; ``fn`` family name without spaces or hyphens;
``fn_tokens`` its significant parts, ``|``-separated (hyphenated and two-part names); ``fn_sdx``;
``name_set`` given name and first family part in sorted order (finds swapped names);
``birth_date``, ``dob_str`` (yyyymmdd), ``birth_year``, ``dob_md`` (mmdd), ``dob_ym`` (yyyymm);
``sex`` M/F/X; ``cin`` valid Medi-Cal
CIN; ``ssn`` valid SSN; ``phone`` 10 digits; ``zip5``; ``addr_key`` house number + USPS street;
``city``. Invalid or placeholder values become null (no evidence), never a wrong agreement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.identity import config

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

def _fold_table() -> tuple[str, str]:
    """Accented Latin letters (Spanish, Vietnamese, Tagalog, ...) and their ASCII base letters,
    for ``translate`` (the engine has no Unicode normalisation function)."""
    import unicodedata

    extra = {"Đ": "D", "đ": "d", "Ø": "O", "ø": "o", "Ł": "L", "ł": "l", "ß": "s", "Æ": "A", "æ": "a"}
    src, dst = [], []
    for code in [*range(0x00C0, 0x0250), *range(0x1E00, 0x1F00)]:
        ch = chr(code)
        base = extra.get(ch) or unicodedata.normalize("NFKD", ch)[:1]
        if base != ch and base.isascii() and base.isalpha():
            src.append(ch)
            dst.append(base)
    return "".join(src), "".join(dst)


_ACCENTED, _PLAIN = _fold_table()

#: Given-name values that mean "not known" (newborn registrations, test records).
PLACEHOLDER_GIVEN = ("UNKNOWN", "UNK", "BABY", "BABYBOY", "BABYGIRL", "BOY", "GIRL", "INFANT",
                     "NEWBORN", "TEST", "NONE", "NA", "NULL", "FNU", "TWIN", "TWINA", "TWINB")
PLACEHOLDER_FAMILY = ("UNKNOWN", "UNK", "TEST", "NONE", "NA", "NULL", "LNU", "DOE")
NAME_TITLES = ("MR", "MRS", "MS", "MISS", "DR", "SR", "SRA", "SRTA", "DON", "DONA")
NAME_SUFFIXES = ("JR", "SR", "II", "III", "IV", "V", "2ND", "3RD")
FAMILY_PARTICLES = ("DE", "LA", "DEL", "LOS", "LAS", "Y", "E", "VAN", "VON", "DER", "DEN", "DA", "DI",
                    "DOS", "DAS", "DU", "LE", "ST", "MC", "MAC", "O", "BIN", "BEN", "AL", "EL")
#: SSNs that are valid in form but known not to identify anyone (advertising, test values).
BAD_SSNS = ("123456789", "078051120", "219099999", "987654320", "987654321")
#: Address lines that say there is no address.
PLACEHOLDER_ADDRESS = r"^(NO FIXED ADDRESS|NO ADDRESS|HOMELESS|GENERAL DELIVERY|UNKNOWN|UNK|NONE|NA|DECLINED|TRANSIENT)$"


def _f():  # noqa: ANN202 - the functions module, imported lazily
    from pyspark.sql import functions as F

    return F


def _nullif_empty(c: Column) -> Column:
    F = _f()
    return F.when(F.length(c) > 0, c)


def _in(c: Column, values: tuple[str, ...]) -> Column:
    return c.isin(list(values))


def clean_text(c: Column) -> Column:
    """Upper-case, accents folded, apostrophes dropped, other punctuation and runs of spaces
    collapsed to single spaces; empty -> null."""
    F = _f()
    s = F.upper(F.translate(c, _ACCENTED, _PLAIN))
    s = F.regexp_replace(s, "['`]", "")
    s = F.regexp_replace(s, "[^A-Z0-9#]+", " ")
    return _nullif_empty(F.trim(s))


def _name_tokens(c: Column) -> Column:
    """Letters-only tokens of a name (digits dropped), titles and generational suffixes removed."""
    F = _f()
    s = F.regexp_replace(F.coalesce(clean_text(c), F.lit("")), "[^A-Z ]", " ")
    s = F.trim(F.regexp_replace(s, " +", " "))
    toks = F.split(s, " ")
    drop = list(NAME_TITLES + NAME_SUFFIXES)
    return F.filter(toks, lambda t: (F.length(t) > 0) & ~t.isin(drop))


def given_name(c: Column) -> Column:
    """First significant token of a given name; placeholders (BABY BOY, UNKNOWN) -> null."""
    F = _f()
    toks = _name_tokens(c)
    joined = F.array_join(toks, "")
    first = F.get(toks, 0)
    return F.when(_in(joined, PLACEHOLDER_GIVEN) | _in(first, PLACEHOLDER_GIVEN), F.lit(None)) \
        .otherwise(_nullif_empty(first))


def middle_initial(middle: Column, given: Column) -> Column:
    """Middle initial from the middle name, else from a second given-name token."""
    F = _f()
    mid = F.get(_name_tokens(middle), 0)
    second = F.get(_name_tokens(given), 1)
    return _nullif_empty(F.substring(F.coalesce(_nullif_empty(mid), second), 1, 1))


def family_name(c: Column) -> Column:
    """All family-name tokens joined without spaces (DE LA CRUZ -> DELACRUZ)."""
    F = _f()
    joined = F.array_join(_name_tokens(c), "")
    return F.when(_in(joined, PLACEHOLDER_FAMILY), F.lit(None)).otherwise(_nullif_empty(joined))


def family_tokens(c: Column) -> Column:
    """Significant family-name parts (GARCIA-LOPEZ -> [GARCIA, LOPEZ]; particles dropped)."""
    F = _f()
    toks = F.filter(_name_tokens(c), lambda t: (F.length(t) > 1) & ~t.isin(list(FAMILY_PARTICLES)))
    return F.when(F.size(toks) > 0, toks)


def nickname_frame(spark: SparkSession) -> DataFrame:
    """(given name, its nickname groups) rows from the nickname table, to join on the name.

    A join, not a map literal: the embedded engine rebuilds a literal map for every row,
    which made a million records take minutes.
    """
    rows = [(k, list(v)) for k, v in sorted(config.nicknames().items())]
    return spark.createDataFrame(rows, "_nick string, _canon array<string>")


def sex(c: Column) -> Column:
    """M, F or X (non-binary, a valid California value); anything else (U, unknown) -> null."""
    F = _f()
    s = F.upper(F.trim(c))
    return (F.when(s.isin("M", "MALE", "1", "MAN", "BOY"), F.lit("M"))
            .when(s.isin("F", "FEMALE", "2", "WOMAN", "GIRL"), F.lit("F"))
            .when(s.isin("X", "NONBINARY", "NON-BINARY"), F.lit("X")))


def ssn(c: Column) -> Column:
    """Nine digits, else null. Invalid per SSA: area 000, 666 or 900-999; group 00; serial
    0000; all one digit; and known advertising / test numbers."""
    F = _f()
    d = F.regexp_replace(c, "[^0-9]", "")
    same = [str(i) * 9 for i in range(10)]
    valid = ((F.length(d) == 9) & ~F.substring(d, 1, 3).isin("000", "666") & (F.substring(d, 1, 1) != "9")
             & (F.substring(d, 4, 2) != "00") & (F.substring(d, 6, 4) != "0000") & ~d.isin(same)
             & ~d.isin(list(BAD_SSNS)))
    return F.when(valid, d)


def cin(c: Column) -> Column:
    """Medi-Cal CIN: the digit 9, seven digits, a letter (upper-cased, separators removed)."""
    F = _f()
    s = F.upper(F.regexp_replace(c, "[^0-9A-Za-z]", ""))
    return F.when(s.rlike("^9[0-9]{7}[A-Z]$"), s)


def phone(c: Column) -> Column:
    """Ten-digit NANP number (a leading 1 dropped); invalid area/exchange codes, one repeated
    digit and the fictional 555-01xx range -> null."""
    F = _f()
    d = F.regexp_replace(c, "[^0-9]", "")
    d = F.when((F.length(d) == 11) & (F.substring(d, 1, 1) == "1"), F.substring(d, 2, 10)).otherwise(d)
    same = [str(i) * 10 for i in range(10)]
    valid = ((F.length(d) == 10) & F.substring(d, 1, 1).rlike("[2-9]") & F.substring(d, 4, 1).rlike("[2-9]")
             & ~d.isin(same) & ~((F.substring(d, 4, 3) == "555") & (F.substring(d, 7, 2) == "01")))
    return F.when(valid, d)


def zip5(c: Column) -> Column:
    """First five digits of a ZIP or ZIP+4; 00000 (homeless in CalOMS), 99999 and other
    placeholders -> null. Three- or four-digit codes (a ZIP that lost its leading zeros in a
    spreadsheet, or a non-US postcode in ``phmx identity link``) are left-padded with zeros."""
    F = _f()
    d = F.regexp_replace(c, "[^0-9]", "")
    z = F.when(F.length(d) >= 5, F.substring(d, 1, 5)).when(F.length(d) >= 3, F.lpad(d, 5, "0"))
    return F.when(~z.isin([str(i) * 5 for i in range(10)]), z)


def address_key(c: Column) -> Column:
    """House number + street with USPS abbreviations, the unit removed (``123 N MAIN ST``)."""
    F = _f()
    abbr = config.address_abbreviations()
    s = F.coalesce(clean_text(F.regexp_replace(c, "#", " # ")), F.lit(""))
    units = sorted(set(abbr["units"]) | set(abbr["units"].values()))
    unit_re = "|".join(u.replace("#", "\\#") for u in units)
    s = F.regexp_replace(s, f"\\s({unit_re})(\\s+[A-Z0-9]+)?(\\s.*)?$", "")
    mapping = {**abbr["suffixes"], **abbr["directionals"]}
    by_target: dict[str, list[str]] = {}
    for k, v in mapping.items():
        if k != v:
            by_target.setdefault(v, []).append(k)

    def standard(token: Column) -> Column:
        # A flat CASE per token: a literal map is rebuilt per row by the engine (very slow),
        # and a chain of regexp_replace calls nests too deep for the Spark Connect protocol.
        expr = None
        for target, variants in sorted(by_target.items()):
            cond = token.isin(sorted(variants))
            expr = F.when(cond, F.lit(target)) if expr is None else expr.when(cond, F.lit(target))
        return expr.otherwise(token) if expr is not None else token

    s = F.array_join(F.transform(F.split(s, " "), standard), " ")
    out = F.trim(F.regexp_replace(s, " +", " "))
    return F.when((F.length(out) > 2) & ~out.rlike(PLACEHOLDER_ADDRESS), out)


def city(c: Column) -> Column:
    F = _f()
    s = F.regexp_replace(F.coalesce(clean_text(c), F.lit("")), "[^A-Z ]", "")
    return _nullif_empty(F.trim(F.regexp_replace(s, "^(CITY OF|TOWN OF) ", "")))


def birth_date(c: Column) -> Column:
    """A plausible birth date (after 1900-01-01, not in the future), else null."""
    F = _f()
    d = c.cast("date")
    return F.when((d > F.lit("1900-01-01").cast("date")) & (d <= F.current_date()), d)


def record_id(source: Column, source_person_id: Column) -> Column:
    """A 64-bit record id (hash of source and local id): compact join keys for pairs."""
    F = _f()
    return F.xxhash64(source, source_person_id)


PERSON_FIELDS = ("cin", "ssn", "given_name", "middle_name", "family_name", "birth_date", "sex",
                 "address_line", "city", "state", "zip", "county_fips", "phone", "record_date")


def standardise(person: DataFrame) -> DataFrame:
    """``silver.person``-shaped rows -> one row of features per record (``rid`` + features).

    Missing input columns are treated as null. Keeps ``source``, ``source_person_id`` and
    ``record_date`` (survivorship), adds ``fingerprint`` (to spot changed records).
    """
    F = _f()
    present = set(person.columns)

    def col(name: str) -> Column:
        return F.col(name) if name in present else F.lit(None).cast("string")

    base = person.select(
        F.col("source").cast("string").alias("source"),
        F.col("source_person_id").cast("string").alias("source_person_id"),
        *[(col(c) if c != "birth_date" else (F.col(c).cast("date") if c in present else F.lit(None).cast("date")))
          .alias(f"_{c}") for c in PERSON_FIELDS],
    )
    gn = given_name(F.col("_given_name"))
    fn = family_name(F.col("_family_name"))
    dob = birth_date(F.col("_birth_date"))
    std = base.select(
        record_id(F.col("source"), F.col("source_person_id")).alias("rid"),
        "source", "source_person_id",
        gn.alias("gn"),
        F.when(gn.isNotNull() | F.col("_middle_name").isNotNull(),
               middle_initial(F.col("_middle_name"), F.col("_given_name"))).alias("mi"),
        fn.alias("fn"),
        family_tokens(F.col("_family_name")).alias("_fn_parts"),
        dob.alias("birth_date"),
        sex(F.col("_sex")).alias("sex"),
        cin(F.col("_cin")).alias("cin"),
        ssn(F.col("_ssn")).alias("ssn"),
        phone(F.col("_phone")).alias("phone"),
        zip5(F.col("_zip")).alias("zip5"),
        address_key(F.col("_address_line")).alias("addr_key"),
        city(F.col("_city")).alias("city"),
        F.col("_county_fips").alias("county_fips"),
        F.col("_record_date").cast("date").alias("record_date"),
    )
    nick = F.broadcast(nickname_frame(person.sparkSession))
    std = std.join(nick, std["gn"] == nick["_nick"], "left").select(
        *[F.col(c) for c in std.columns],
        F.when(F.col("gn").isNotNull(), F.coalesce(F.array_join(F.col("_canon"), "|"), F.col("gn"))).alias("gn_canon"),
        F.when(F.col("gn").isNotNull(), F.coalesce(F.get(F.col("_canon"), 0), F.col("gn"))).alias("gn_key"),
        F.soundex(F.col("gn")).alias("gn_sdx"),
        F.substring(F.col("gn"), 1, 1).alias("gn_initial"),
        F.array_join(F.col("_fn_parts"), "|").alias("fn_tokens"),
        F.soundex(F.coalesce(F.get(F.col("_fn_parts"), 0), F.col("fn"))).alias("fn_sdx"),
        F.date_format(F.col("birth_date"), "yyyyMMdd").alias("dob_str"),
        F.year(F.col("birth_date")).alias("birth_year"),
        F.date_format(F.col("birth_date"), "MMdd").alias("dob_md"),
        F.date_format(F.col("birth_date"), "yyyyMM").alias("dob_ym"),
        # Given name and first family-name part, in sorted order: blocks swapped names together.
        F.when(F.col("gn").isNotNull() & F.col("fn").isNotNull(),
               F.array_join(F.array_sort(F.array(F.col("gn"), F.coalesce(F.get(F.col("_fn_parts"), 0), F.col("fn")))),
                            "|")).alias("name_set"),
    )
    std = std.drop("_fn_parts")
    fp_cols = ["gn", "mi", "fn", "dob_str", "sex", "cin", "ssn", "phone", "zip5", "addr_key", "city", "county_fips"]
    return std.withColumn("fingerprint", F.xxhash64(*[F.coalesce(F.col(c).cast("string"), F.lit("\u0000"))
                                                       for c in fp_cols]))


def add_term_frequencies(std: DataFrame, columns: tuple[str, ...] = ("gn", "fn")) -> DataFrame:
    """Add ``tf_<col>``: the share of records with this value (for term-frequency adjustment)."""
    F = _f()
    out = std
    for c in columns:
        counts = std.where(F.col(c).isNotNull()).groupBy(c).agg(F.count(F.lit(1)).alias("_n"))
        total = counts.agg(F.sum("_n").alias("_total"))
        freq = counts.crossJoin(total).select(F.col(c).alias(f"_tfkey_{c}"),
                                              (F.col("_n") / F.col("_total")).alias(f"tf_{c}"))
        out = out.join(freq, out[c] == freq[f"_tfkey_{c}"], "left").drop(f"_tfkey_{c}")
    return out
