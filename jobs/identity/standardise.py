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
``sex`` M/F/X; one column per declared identifier (``cin``, ``ssn``, ... normalised and
validated as its declaration says: :class:`jobs.identity.config.Identifier`); ``phone`` 10
digits; ``zip5``; ``addr_key`` house number + USPS street; ``addr_num`` the house number;
``addr_words`` house number and street words (:func:`street_words`); ``city``; ``gn_tokens`` every
significant given-name token (compound names); ``gn_alias`` / ``fn_alias`` a recorded alias;
``mmn`` mother's maiden name. Invalid or placeholder values become null (no evidence), never a
wrong agreement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.identity import config

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from jobs.identity.config import Identifier

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
#: Address lines that say there is no address.
PLACEHOLDER_ADDRESS = r"^(NO FIXED ADDRESS|NO ADDRESS|HOMELESS|GENERAL DELIVERY|UNKNOWN|UNK|NONE|NA|DECLINED|TRANSIENT)$"


def _f():  # noqa: ANN202 - the functions module, imported lazily
    from pyspark.sql import functions as F

    return F


def _nullif_empty(c: Column) -> Column:
    """``c``, or null when it is empty. ``nullif`` reads ``c`` once; ``when(length(c) > 0, c)``
    evaluated the whole expression behind ``c`` twice (the engine does not share it)."""
    F = _f()
    return F.nullif(c, F.lit(""))


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
    return given_from_tokens(_name_tokens(c))


def given_from_tokens(toks: Column) -> Column:
    """:func:`given_name` from the name's tokens (:func:`_name_tokens`). The engine does not
    share repeated subexpressions: an expression this one reads several times is best a
    column of an earlier projection."""
    F = _f()
    joined = F.array_join(toks, "")
    first = F.get(toks, 0)
    return F.when(_in(joined, PLACEHOLDER_GIVEN) | _in(first, PLACEHOLDER_GIVEN), F.lit(None)) \
        .otherwise(_nullif_empty(first))


def middle_initial(middle: Column, given: Column) -> Column:
    """Middle initial from the middle name, else from a second given-name token."""
    return middle_from_tokens(_name_tokens(middle), _name_tokens(given))


def middle_from_tokens(middle: Column, given: Column) -> Column:
    """:func:`middle_initial` from the tokens of the middle and given names."""
    F = _f()
    mid = F.get(middle, 0)
    second = F.get(given, 1)
    return _nullif_empty(F.substring(F.coalesce(_nullif_empty(mid), second), 1, 1))


def family_name(c: Column) -> Column:
    """All family-name tokens joined without spaces (DE LA CRUZ -> DELACRUZ)."""
    return family_from_tokens(_name_tokens(c))


def family_from_tokens(toks: Column) -> Column:
    """:func:`family_name` from the name's tokens."""
    F = _f()
    joined = F.array_join(toks, "")
    return F.when(_in(joined, PLACEHOLDER_FAMILY), F.lit(None)).otherwise(_nullif_empty(joined))


def family_tokens(c: Column) -> Column:
    """Significant family-name parts (GARCIA-LOPEZ -> [GARCIA, LOPEZ]; particles dropped)."""
    return family_parts_from_tokens(_name_tokens(c))


def family_parts_from_tokens(toks: Column) -> Column:
    """:func:`family_tokens` from the name's tokens."""
    F = _f()
    parts = F.filter(toks, lambda t: (F.length(t) > 1) & ~t.isin(list(FAMILY_PARTICLES)))
    return F.when(F.size(parts) > 0, parts)


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


def ssa_valid(d: Column) -> Column:
    """Nine digits valid per SSA: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    F = _f()
    return ((F.length(d) == 9) & ~F.substring(d, 1, 3).isin("000", "666") & (F.substring(d, 1, 1) != "9")
            & (F.substring(d, 4, 2) != "00") & (F.substring(d, 6, 4) != "0000"))


def identifier(c: Column, spec: Identifier, source: Column | None = None) -> Column:
    """An identifier value normalised and validated as ``spec`` declares, else null.

    Normalisation: ``digits`` keeps digits, ``alnum`` letters and digits (upper case), ``text``
    trims and upper-cases. Invalid: not matching ``pattern``, failing ``check``, one repeated
    character, or listed in ``invalid``. With ``namespace: source`` the value is prefixed by
    the record's source, so it agrees only within that source.
    """
    return identifier_of(identifier_normalised(c, spec), spec, source)


def identifier_normalised(c: Column, spec: Identifier) -> Column:
    """The normalisation step of :func:`identifier` (``spec.normalise``)."""
    F = _f()
    raw = c.cast("string")
    if spec.normalise == "digits":
        return F.regexp_replace(raw, "[^0-9]", "")
    if spec.normalise == "alnum":
        return F.upper(F.regexp_replace(raw, "[^0-9A-Za-z]", ""))
    return F.upper(F.trim(raw))


def identifier_of(v: Column, spec: Identifier, source: Column | None = None) -> Column:
    """The validation step of :func:`identifier` on the normalised value ``v``, which it reads
    a dozen times: give it a column of an earlier projection."""
    F = _f()
    # Not one repeated character (000000000, 999999999): removing the first character's
    # occurrences leaves something. (No back-references: the engine's regex has none.)
    valid = (F.length(v) > 0) & (F.length(F.replace(v, F.substring(v, 1, 1), F.lit(""))) > 0)
    if spec.pattern:
        valid = valid & v.rlike(spec.pattern if spec.pattern.startswith("^") else f"^(?:{spec.pattern})$")
    if spec.check == "ssa_ssn":
        valid = valid & ssa_valid(v)
    if spec.invalid:
        valid = valid & ~v.isin(list(spec.invalid))
    if spec.sources != ("*",) and source is not None:
        from_source = F.lit(False)
        for pat in spec.sources:
            from_source = from_source | source.like(pat.replace("*", "%").replace("?", "_"))
        valid = valid & from_source
    out = F.when(valid, v)
    if spec.namespace == "source" and source is not None:
        out = F.concat(source, F.lit("\u001f"), out)
    return out


def ssn(c: Column) -> Column:
    """The default SSN declaration applied to ``c`` (nine digits valid per SSA, not a known
    advertising or test number)."""
    return identifier(c, _default_identifier("ssn"))


def cin(c: Column) -> Column:
    """The default CIN declaration applied to ``c`` (the digit 9, seven digits, a letter)."""
    return identifier(c, _default_identifier("cin"))


def _default_identifier(name: str) -> Identifier:
    for i in config.load().identifiers:
        if i.name == name:
            return i
    raise KeyError(name)


def phone(c: Column) -> Column:
    """Ten-digit NANP number (a leading 1 dropped); invalid area/exchange codes, one repeated
    digit and the fictional 555-01xx range -> null."""
    return phone_of(_digits(c))


def _digits(c: Column) -> Column:
    return _f().regexp_replace(c, "[^0-9]", "")


def phone_of(d: Column) -> Column:
    """:func:`phone` from the number's digits, which it reads many times (see :func:`identifier_of`)."""
    F = _f()
    d = F.when((F.length(d) == 11) & (F.substring(d, 1, 1) == "1"), F.substring(d, 2, 10)).otherwise(d)
    same = [str(i) * 10 for i in range(10)]
    valid = ((F.length(d) == 10) & F.substring(d, 1, 1).rlike("[2-9]") & F.substring(d, 4, 1).rlike("[2-9]")
             & ~d.isin(same) & ~((F.substring(d, 4, 3) == "555") & (F.substring(d, 7, 2) == "01")))
    return F.when(valid, d)


def zip5(c: Column) -> Column:
    """First five digits of a ZIP or ZIP+4; 00000 (homeless in CalOMS), 99999 and other
    placeholders -> null. Three- or four-digit codes (a ZIP that lost its leading zeros in a
    spreadsheet, or a non-US postcode in ``phmx identity link``) are left-padded with zeros."""
    return zip_of(_digits(c))


def zip_of(d: Column) -> Column:
    """:func:`zip5` from the code's digits (see :func:`identifier_of`)."""
    F = _f()
    z = F.when(F.length(d) >= 5, F.substring(d, 1, 5)).when(F.length(d) >= 3, F.lpad(d, 5, "0"))
    return F.when(~z.isin([str(i) * 5 for i in range(10)]), z)


def address_key(c: Column) -> Column:
    """House number + street with USPS abbreviations, the unit removed (``123 N MAIN ST``)."""
    return address_key_of(address_text(c))


def address_key_of(text: Column) -> Column:
    """:func:`address_key` from :func:`address_text`: null when too short or a placeholder.
    It reads ``text`` three times: give it a column of an earlier projection (the engine
    would evaluate an inline expression each time)."""
    F = _f()
    return F.when((F.length(text) > 2) & ~text.rlike(PLACEHOLDER_ADDRESS), text)


def address_text(c: Column) -> Column:
    """An address line normalised (upper case, USPS abbreviations, no unit); :func:`address_key_of`
    turns it into the key."""
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
    return F.trim(F.regexp_replace(s, " +", " "))


def house_number(key: Column) -> Column:
    """The house number of an address key (its first token, when it is a number: ``123``,
    ``123A``), else null."""
    F = _f()
    first = F.regexp_extract(key, "^([0-9]+[A-Z]?) ", 1)
    return F.when(first != F.lit(""), first)


def street_words(key: Column) -> Column:
    """``<house number>:<word>`` for each street-name word of an address key, ``|``-separated
    (``12:COLEBATCH|12:BRENTWOOD``), or null without a house number or such a word.

    Words are the letters-only tokens of three letters or more that are not a USPS suffix or
    directional (``ST``, ``PL``, ``N``). Two addresses sharing one such entry have the same
    house number and a street word in common, whatever the order of the parts, a run-together
    or split word elsewhere, or a second line present on one side only: ``address_similar``
    (a few keystrokes over the whole line) misses those, and a ZIP alone says little.
    """
    F = _f()
    abbr = config.address_abbreviations()
    stop = sorted({*abbr["suffixes"], *abbr["suffixes"].values(), *abbr["directionals"],
                   *abbr["directionals"].values()})
    num = house_number(key)
    words = F.filter(F.split(key, " "), lambda t: t.rlike("^[A-Z]{3,}$") & ~t.isin(stop))
    tagged = F.transform(F.array_distinct(words), lambda t: F.concat(num, F.lit(":"), t))
    return F.when(num.isNotNull() & (F.size(words) > 0), F.array_join(F.array_sort(tagged), "|"))


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


#: Person fields standardisation reads (silver.person columns; the link command's canonical
#: fields). Identifier columns come from the settings' declarations on top of these.
PERSON_FIELDS = ("given_name", "middle_name", "family_name", "birth_date", "sex", "address_line", "city", "state",
                 "zip", "county_fips", "phone", "record_date", "alias_given_name", "alias_family_name",
                 "mother_maiden_name", "address_history")

#: Person field -> the standardised features it makes available (a field nobody has is left
#: out of blocking and comparisons).
FEATURES_OF = {
    "given_name": {"gn", "gn_canon", "gn_key", "gn_sdx", "gn_initial", "gn_tokens", "mi"}, "middle_name": {"mi"},
    "family_name": {"fn", "fn_sdx", "fn_tokens"},
    "birth_date": {"birth_date", "dob_str", "birth_year", "dob_md", "dob_ym"},
    "sex": {"sex"}, "phone": {"phone"}, "zip": {"zip5"}, "address_line": {"addr_key", "addr_num", "addr_words"}, "city": {"city"},
    "alias_given_name": {"gn_alias"}, "alias_family_name": {"fn_alias"}, "mother_maiden_name": {"mmn"},
    "address_history": {"addr_hist"},
}


def available_features(fields: set[str], settings: config.IdentitySettings) -> set[str]:
    """Features computable from these person fields (identifiers by their column)."""
    out: set[str] = set()
    for f in fields:
        out |= FEATURES_OF.get(f, set())
    if {"given_name", "family_name"} <= fields:
        out |= {"name_set", "no_zip"}
    out |= {i.name for i in settings.identifiers if i.column in fields}
    out |= {k for i in settings.identifiers if i.column in fields for k in i.typo_keys}
    return out


def standardise(person: DataFrame, settings: config.IdentitySettings | None = None) -> DataFrame:
    """``silver.person``-shaped rows -> one row of features per record (``rid`` + features).

    Missing input columns are treated as null. Keeps ``source``, ``source_person_id`` and
    ``record_date`` (survivorship), adds ``fingerprint`` (to spot changed records). Each
    identifier the settings declare becomes a feature column of its name.
    """
    F = _f()
    settings = settings or config.load()
    present = set(person.columns)
    idents = settings.identifiers

    def col(name: str) -> Column:
        return F.col(name) if name in present else F.lit(None).cast("string")

    id_cols = list(dict.fromkeys(i.column for i in idents))
    base = person.select(
        F.col("source").cast("string").alias("source"),
        F.col("source_person_id").cast("string").alias("source_person_id"),
        *[(col(c) if c != "birth_date" else (F.col(c).cast("date") if c in present else F.lit(None).cast("date")))
          .alias(f"_{c}") for c in PERSON_FIELDS],
        *[col(c).cast("string").alias(f"_id_{c}") for c in id_cols],
    )
    # Each name is tokenised once (the address line, phone, ZIP and identifiers normalised once),
    # in its own projection, and the features built from them in the next: inline, the engine
    # re-evaluated a name's tokens for every use (a given name's a dozen times per record), the
    # address three times, a phone number's digits some thirty.
    names = ("given_name", "middle_name", "family_name", "alias_given_name", "alias_family_name",
             "mother_maiden_name")
    base = base.select("*", *[_name_tokens(F.col(f"_{c}")).alias(f"_tok_{c}") for c in names],
                       address_text(F.col("_address_line")).alias("_addr_text"),
                       _digits(F.col("_phone")).alias("_phone_digits"), _digits(F.col("_zip")).alias("_zip_digits"),
                       *[identifier_normalised(F.col(f"_id_{i.column}"), i).alias(f"_idn_{i.name}") for i in idents])
    given_toks = F.filter(F.col("_tok_given_name"),
                          lambda t: (F.length(t) > 1) & ~t.isin(list(FAMILY_PARTICLES + PLACEHOLDER_GIVEN)))
    base = base.select(
        "*",
        given_from_tokens(F.col("_tok_given_name")).alias("_gn"),
        family_from_tokens(F.col("_tok_family_name")).alias("_fn"),
        family_parts_from_tokens(F.col("_tok_family_name")).alias("_fn_parts"),
        middle_from_tokens(F.col("_tok_middle_name"), F.col("_tok_given_name")).alias("_mi"),
        F.when(F.size(given_toks) > 0, F.array_join(given_toks, "|")).alias("_gn_tokens"),
    )
    gn = F.col("_gn")
    dob = birth_date(F.col("_birth_date"))
    std = base.select(
        record_id(F.col("source"), F.col("source_person_id")).alias("rid"),
        "source", "source_person_id",
        gn.alias("gn"),
        F.when(gn.isNotNull() | F.col("_middle_name").isNotNull(), F.col("_mi")).alias("mi"),
        F.col("_fn").alias("fn"),
        "_fn_parts",
        F.when(gn.isNotNull(), F.col("_gn_tokens")).alias("gn_tokens"),
        given_from_tokens(F.col("_tok_alias_given_name")).alias("gn_alias"),
        family_from_tokens(F.col("_tok_alias_family_name")).alias("fn_alias"),
        family_from_tokens(F.col("_tok_mother_maiden_name")).alias("mmn"),
        dob.alias("birth_date"),
        sex(F.col("_sex")).alias("sex"),
        *[identifier_of(F.col(f"_idn_{i.name}"), i, F.col("source")).alias(i.name) for i in idents],
        phone_of(F.col("_phone_digits")).alias("phone"),
        zip_of(F.col("_zip_digits")).alias("zip5"),
        address_key_of(F.col("_addr_text")).alias("addr_key"),
        city(F.col("_city")).alias("city"),
        F.col("_county_fips").alias("county_fips"),
        F.col("_record_date").cast("date").alias("record_date"),
        *([_one_address(F.col("_address_line"), F.col("_address_history")).alias("_one_address")]
          if "address_history" in present else []),
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
        # "1" for a record without a ZIP, else null: a blocking key that confines a rule to them.
        F.when(F.col("zip5").isNull(), F.lit("1")).alias("no_zip"),
        house_number(F.col("addr_key")).alias("addr_num"),
        street_words(F.col("addr_key")).alias("addr_words"),
        # Given name and first family-name part, in sorted order: blocks swapped names together.
        F.when(F.col("gn").isNotNull() & F.col("fn").isNotNull(),
               F.array_join(F.array_sort(F.array(F.col("gn"), F.coalesce(F.get(F.col("_fn_parts"), 0), F.col("fn")))),
                            "|")).alias("name_set"),
    )
    std = std.drop("_fn_parts")
    typo = [(i.name, k) for i in idents for k in i.typo_keys]
    if typo:
        std = std.select("*", *[identifier_typo_key(F.col(name), key).alias(key) for name, key in typo])
    if "address_history" in present:
        std = with_address_history(std, person)
    else:
        std = std.withColumn("addr_hist", F.lit(None).cast("string"))
    fp_cols = ["gn", "mi", "fn", "dob_str", "sex", *[i.name for i in idents], "phone", "zip5", "addr_key", "city",
               "county_fips", "gn_tokens", "gn_alias", "fn_alias", "mmn", "addr_hist"]
    return std.withColumn("fingerprint", F.xxhash64(*[F.coalesce(F.col(c).cast("string"), F.lit("\u0000"))
                                                       for c in fp_cols]))


def identifier_typo_key(c: Column, key: str) -> Column:
    """One of an identifier's typo-blocking keys (``<name>_head``, ``_tail``, ``_sorted``):
    the first or last ``ceil(n/2)`` characters, or the characters sorted."""
    F = _f()
    half = F.ceil(F.length(c) / F.lit(2)).cast("int")
    if key.endswith("_head"):
        return F.substring(c, F.lit(1), half)
    if key.endswith("_tail"):
        return F.substring(c, F.length(c) - half + F.lit(1), half)
    return F.array_join(F.array_sort(F.split(c, "")), "")


def with_address_history(std: DataFrame, person: DataFrame) -> DataFrame:
    """Add ``addr_hist``: the address keys of every address the record's source ever sent for
    it (``address_history``, newline-separated lines) and of its current address, distinct,
    sorted and ``|``-joined (the ``disjoint`` location level asks "did they ever share an
    address"); null when the source sent no history or the record has no usable address.

    Most records with a history have one address ever: every line is the current address
    (97% of such records on the synthetic population). Their ``addr_hist`` is the current
    address's key, ``addr_key``, already computed: only the other records' lines are exploded,
    each distinct line keyed by :func:`address_key` (the same key as ``addr_key``) and gathered
    back per record. Keying every line of every record was 40% of standardising. Built from
    ``person`` alone (the engine mis-resolves a derived frame joined back onto its own source).
    """
    F = _f()
    several = person.where(F.col("address_history").isNotNull()
                           & ~_one_address(_current_line(person), F.col("address_history"))) \
        .select(record_id(F.col("source"), F.col("source_person_id")).alias("_hrid"),
                F.explode(_history_lines(_current_line(person), F.col("address_history"))).alias("_line"))
    lines = several.select("_hrid", address_text(F.col("_line")).alias("_t"))
    hist = (lines.select("_hrid", address_key_of(F.col("_t")).alias("_k")).where(F.col("_k").isNotNull())
            .groupBy("_hrid").agg(F.array_join(F.array_sort(F.collect_set("_k")), "|").alias("_hist")))
    out = std.join(hist, std["rid"] == hist["_hrid"], "left").drop("_hrid")
    return out.withColumn("addr_hist", F.when(F.col("_one_address"), F.col("addr_key")).otherwise(F.col("_hist"))) \
        .drop("_one_address", "_hist")


def _current_line(person: DataFrame) -> Column:
    F = _f()
    return F.col("address_line") if "address_line" in person.columns else F.lit(None).cast("string")


def _history_lines(current: Column, history: Column) -> Column:
    """The distinct address lines of a record: its history's and the current one; null when
    the source sent no history (then "never recorded the other's address" is unknown, and a
    differing current address alone is no such evidence)."""
    F = _f()
    return F.when(history.isNotNull(), F.array_distinct(F.split(F.concat_ws("\n", current, history), "\n")))


def _one_address(current: Column, history: Column) -> Column:
    """True when the source sent a history and every line of it is the current address (a
    current address with a line break in it is not)."""
    F = _f()
    lines = _history_lines(current, history)
    return F.coalesce((F.size(lines) == 1) & (F.get(lines, 0) == current), F.lit(False))


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
