"""Our own Presidio recognizers for California health-care notes.

The stock recognizers and the small spaCy model miss or mislabel what matters most here:
Medi-Cal CINs, medical record numbers, street addresses (the model does not see house numbers
and street names as one entity), California driver licences, ages over 89, and names written
"LAST, FIRST" or after a role word. Program vocabulary ("CIN", "Medi-Cal", "ECM") is kept out
of the results by an allow list (see :data:`ALLOW_LIST`).
"""

from __future__ import annotations

import re
from functools import lru_cache

from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult

from privacy.checker import given_names

_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_MONTH_WORDS = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec"}

# Words that look like entities to the model but are program vocabulary; never redacted.
ALLOW_LIST: tuple[str, ...] = (
    "CIN", "CINs", "Medi-Cal", "MediCal", "Medi-Cal's", "MEDS", "BIC", "CalAIM", "ECM", "SMI", "SUD", "MAT", "OUD",
    "DHCS", "HEDIS", "FUH", "FUM", "FUA", "CCM", "TCM", "PHM", "IMA", "CIS-10", "OEV", "TFL", "PCP",
    "ED", "ER", "MCP", "DSS", "BH", "MH", "CalOMS", "CSI", "CAIR2", "MMR", "PHQ-9", "LHJ", "Community Supports",
    "Skilled Nursing", "Behavioral Health", "NP", "Voicemail", "Outreach", "Intake", "RN", "LCSW", "MD", "SSN", "MRN", "DOB", "ID", "Pt", "ECM lead",
)

STREET_SUFFIX = (
    r"(?:St|Street|Ave|Avenue|Av|Blvd|Boulevard|Rd|Road|Dr|Drive|Ln|Lane|Way|Ct|Court|Pl|Place|Cir|Circle|"
    r"Hwy|Highway|Pkwy|Parkway|Ter|Terrace|Trl|Trail|Loop|Sq|Square|Plz|Plaza|Aly|Alley|Row|Walk|Pass|Run|"
    r"Crossing|Xing|Path|Pike|Expy|Expressway|Fwy|Freeway|Ctr|Center|Cv|Cove|Pt|Point|Bnd|Bend|Crk|Creek|"
    r"Grv|Grove|Hts|Heights|Hl|Hill|Holw|Hollow|Knl|Knoll|Lk|Lake|Mdw|Meadow|Mdws|Meadows|Park|Ridge|Rdg|"
    r"Spg|Spring|Springs|Sta|Station|Vis|Vista|Vly|Valley|Vw|View|Gdns|Gardens|Grn|Green|Est|Estates|Cres|"
    r"Crescent|Landing|Lndg|Mall|Mill|Mills|Oval|Rte|Route|Commons|Camp|Canyon|Cyn|Prairie|Fields|Shores|"
    r"Stream|Summit|Tunnel|Turnpike|Union|Ville|Well|Wells|Junction|Jct|Lodge|Manor|Mount|Mountain|Orchard|"
    r"Ranch|Island|Islands|Harbor|Haven|Heights|Bridge|Brook|Brooks|Burg|Bypass|Causeway|Cliff|Cliffs|"
    r"Club|Common|Corner|Corners|Course|Courts|Dale|Dam|Divide|Extension|Falls|Ferry|Field|Flat|Flats|"
    r"Ford|Forest|Forge|Fork|Forks|Fort|Garden|Gateway|Glen|Harbors|Inlet|Key|Keys|Land|Lights|Lock|"
    r"Locks|Mews|Motorway|Neck|Orchard|Parks|Parkways|Pines|Plains|Port|Radial|Ramp|Rapids|Rest|Shoal|"
    r"Shore|Skyway|Spur|Squares|Stravenue|Throughway|Trace|Track|Trafficway|Underpass|Village|Villages)\b\.?"
)
UNIT = r"(?:,?\s+(?:Apt\.?|Apartment|Unit|Suite|Ste\.?|Space|Spc\.?|Rm\.?|Room|Bldg\.?|Lot|#)\s*#?[A-Za-z0-9-]{1,6})"
STREET_NAME = r"(?:[A-Z][A-Za-z'.-]*|\d{1,3}(?:st|nd|rd|th))(?:\s+(?:[A-Z][A-Za-z'.-]*|de|la|del|los|las)){0,4}"
ADDRESS_RE = re.compile(
    rf"\b\d{{1,6}}[A-Za-z]?\s+(?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?\s+)?{STREET_NAME}\s+{STREET_SUFFIX}"
    rf"(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b\.?)?{UNIT}?"
    rf"|\b(?:P\.?\s?O\.?\s+Box|PO\s+Box)\s+\d{{1,6}}\b"
)
_ROLE_WORDS = (
    r"(?:[Pp]t\.?|[Pp]atient|[Cc]lient|[Mm]ember|[Mm]other|[Ff]ather|[Dd]aughter|[Ss]on|[Ss]ister|[Bb]rother|"
    r"[Ww]ife|[Hh]usband|[Ss]pouse|[Pp]artner|[Cc]aregiver|[Gg]uardian|[Gg]randmother|[Gg]randfather|[Aa]unt|"
    r"[Uu]ncle|[Cc]ousin|[Ff]riend|[Nn]eighbor|[Cc]are manager|[Cc]ase manager|[Ss]ocial worker|[Ll]ead|"
    r"[Cc]ontact|[Ss]poke with|[Ss]poke to|[Cc]alled|[Pp]er|[Nn]ame:|[Cc]ontact:|[Dd]r\.?|[Nn]urse|NP|RN|LCSW|"
    r"MD|[Mm]rs?\.?|[Mm]s\.?|[Mm]iss|[Mm]x\.?|[Ff]or|[Bb]y|[Ww]ith|[Ff]rom|[Tt]o|[Ll]eft message for|"
    r"[Cc]ontact|[Rr]eferred by|[Ss]een by)"
)
_UP = "A-ZÀ-ÖØ-Þ"
_CAP = rf"[{_UP}][a-zß-öø-ÿ'’-]+(?:-[{_UP}][a-zß-öø-ÿ'’-]+)?"
_PARTICLE = r"(?:da|de|del|della|di|do|dos|das|van|von|la|le|du|bin|al)"
ROLE_NAME_RE = re.compile(
    rf"\b{_ROLE_WORDS},?\s+(?P<name>{_CAP}(?:\s+(?:{_PARTICLE}\s+)?{_CAP}){{0,3}})"
)
TITLE_NAME_RE = re.compile(rf"\b(?:Dr|Mr|Mrs|Ms|Mx|Nurse|NP|RN|LCSW|MD)\.?\s+(?P<name>{_CAP}(?:\s+{_CAP}){{0,2}})")
LAST_FIRST_RE = re.compile(
    rf"\b(?P<name>[{_UP}][{_UP}'’-]+(?:\s[{_UP}][{_UP}'’-]+)?,\s*[{_UP}][{_UP}'’-]+(?:\s[{_UP}][{_UP}'’-]+)?(?:\s[{_UP}]\.?)?)(?![\w])"
)
POSSESSIVE_RE = re.compile(rf"(?:^|[.;:]\s+)(?P<name>{_CAP}(?:\s+(?:{_PARTICLE}\s+)?{_CAP}){{1,3}})(?:'s|’s)\b")
SENTENCE_START_NAME_RE = re.compile(
    rf"(?:^|[.;:]\s+)(?P<name>{_CAP}(?:\s+(?:{_PARTICLE}\s+)?{_CAP}){{1,3}})\s+(?:was|is|has|had|missed|"
    r"called|reports|reported|requested|requests|declined|moved|spoke|can|needs|lives|left|attended|"
    r"returned|presented|stated|denies|denied|agreed|completed|arrived|came)\b"
)
# Words a name span must not end or consist of (sentence words captured by the patterns above).
_NOT_NAME = {
    "The", "This", "That", "Client", "Member", "Patient", "Pt", "Please", "Per", "No", "Medi-Cal", "County",
    "Behavioral", "Health", "Nursing", "Skilled", "Community", "Supports", "Plan", "Emergency", "Referral",
    "Referred", "Spanish", "English", "Discharged", "Homeless", "Voicemail", "Outreach", "Transportation",
    "Verified", "Name", "Phone", "Mother", "Father", "Contact", "Left", "Spoke", "Member's", "DOB", "MRN",
    "CIN", "SSN", "ECM", "SMI", "SUD", "ED", "PCP", "MEDS", "DSS", "Dr", "Nurse", "She", "He", "They",
    "Her", "His", "Their", "We", "I", "It", "Jail", "Clinic", "Hospital", "Center", "Unit", "Department",
    "Friday", "Monday", "Tuesday", "Wednesday", "Thursday", "Saturday", "Sunday", "January", "February",
    "March", "April", "May", "June", "July", "August", "September", "October", "November", "December",
    "California", "CA", "Skilled Nursing", "Prefers", "Needs", "Prior", "Dental", "Vaccine",
}


# California counties (all 58) and the larger cities: geographic units smaller than a state.
CA_COUNTIES = (
    "Alameda", "Alpine", "Amador", "Butte", "Calaveras", "Colusa", "Contra Costa", "Del Norte", "El Dorado",
    "Fresno", "Glenn", "Humboldt", "Imperial", "Inyo", "Kern", "Kings", "Lake", "Lassen", "Los Angeles",
    "Madera", "Marin", "Mariposa", "Mendocino", "Merced", "Modoc", "Mono", "Monterey", "Napa", "Nevada",
    "Orange", "Placer", "Plumas", "Riverside", "Sacramento", "San Benito", "San Bernardino", "San Diego",
    "San Francisco", "San Joaquin", "San Luis Obispo", "San Mateo", "Santa Barbara", "Santa Clara",
    "Santa Cruz", "Shasta", "Sierra", "Siskiyou", "Solano", "Sonoma", "Stanislaus", "Sutter", "Tehama",
    "Trinity", "Tulare", "Tuolumne", "Ventura", "Yolo", "Yuba",
)
CA_CITIES = (
    "Los Angeles", "San Diego", "San Jose", "San Francisco", "Fresno", "Sacramento", "Long Beach", "Oakland",
    "Bakersfield", "Anaheim", "Stockton", "Riverside", "Santa Ana", "Irvine", "Chula Vista", "Fremont",
    "Santa Clarita", "San Bernardino", "Modesto", "Fontana", "Moreno Valley", "Oxnard", "Huntington Beach",
    "Glendale", "Ontario", "Elk Grove", "Santa Rosa", "Rancho Cucamonga", "Oceanside", "Lancaster",
    "Garden Grove", "Palmdale", "Salinas", "Hayward", "Corona", "Sunnyvale", "Pomona", "Roseville",
    "Escondido", "Torrance", "Fullerton", "Visalia", "Pasadena", "Orange", "Victorville", "Concord",
    "Santa Clara", "Vallejo", "Berkeley", "Clovis", "Fairfield", "Antioch", "Richmond", "Carlsbad",
    "Temecula", "Murrieta", "Downey", "Costa Mesa", "Inglewood", "El Monte", "Ventura", "Daly City",
    "West Covina", "Burbank", "Santa Maria", "El Cajon", "San Mateo", "Rialto", "Jurupa Valley", "Vista",
    "Compton", "Merced", "Chico", "Redding", "Eureka", "El Centro", "Hanford", "Yuba City", "Tulare",
    "Madera", "Porterville", "Turlock", "Lodi", "Delano", "Watsonville", "Hemet", "Indio", "Palm Springs",
    "Santa Barbara", "Santa Cruz", "Napa", "Petaluma", "Davis", "Woodland", "Ukiah", "Crescent City",
    "Susanville", "Oroville", "Marysville", "Barstow", "Needles", "Calexico", "Brawley", "Bishop",
)
COUNTY_RE = re.compile(rf"\b(?:[{'A-ZÀ-ÖØ-Þ'}][a-z]+\s){{1,3}}County\b")
CITY_STATE_RE = re.compile(r"(?<=, )(?:[A-Z][a-z]+\s){0,2}[A-Z][a-z]+(?=,?\s(?:CA|California)\b)")


@lru_cache(maxsize=1)
def _gazetteer_regex() -> re.Pattern[str]:
    names = sorted(set(CA_COUNTIES) | set(CA_CITIES), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(n) for n in names) + r")\b")


class OfflineEmailRecognizer(PatternRecognizer):
    """Presidio's e-mail patterns, validated with the bundled public-suffix snapshot.

    The stock EmailRecognizer calls ``tldextract.extract``, which fetches the public suffix list
    over the network on first use. This one never does (``suffix_list_urls=()``).
    """

    def __init__(self) -> None:
        from presidio_analyzer.predefined_recognizers import EmailRecognizer

        super().__init__(supported_entity="EMAIL_ADDRESS", name="EmailRecognizer",
                         patterns=list(EmailRecognizer.PATTERNS), context=list(EmailRecognizer.CONTEXT))

    @staticmethod
    @lru_cache(maxsize=1)
    def _extractor():  # noqa: ANN205
        import tldextract

        return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    def validate_result(self, pattern_text: str) -> bool:
        return self._extractor()(pattern_text).fqdn != ""


def _clean_name_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Trim trailing non-name words; reject spans made only of vocabulary words."""
    words = [(m.start() + start, m.end() + start, m.group()) for m in re.finditer(r"\S+", text[start:end])]
    while words and (words[-1][2].rstrip(",.;:") in _NOT_NAME or words[-1][2].lower() in ("and", "or")):
        words.pop()
    while words and words[0][2].rstrip(",.;:") in _NOT_NAME:
        words.pop(0)
    if not words:
        return None
    s, e = words[0][0], words[-1][1]
    while e > s and text[e - 1] in ",.;:":
        e -= 1
    return (s, e) if e > s else None


class RegexEntityRecognizer(EntityRecognizer):
    """A recognizer from compiled regexes whose group ``name`` (or the whole match) is the entity."""

    def __init__(self, entity: str, regexes: list[re.Pattern[str]], score: float, name: str,
                 clean_names: bool = False) -> None:
        self._regexes = regexes
        self._score = score
        self._clean = clean_names
        super().__init__(supported_entities=[entity], name=name, supported_language="en")

    def load(self) -> None:  # nothing to load
        return None

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:  # noqa: ANN001
        out: list[RecognizerResult] = []
        entity = self.supported_entities[0]
        for rx in self._regexes:
            for m in rx.finditer(text):
                s, e = (m.start("name"), m.end("name")) if "name" in rx.groupindex else (m.start(), m.end())
                if self._clean:
                    span = _clean_name_span(text, s, e)
                    if span is None:
                        continue
                    s, e = span
                out.append(RecognizerResult(entity, s, e, self._score))
        return out


class GivenNameRecognizer(EntityRecognizer):
    """PERSON: a listed given name, with the capitalised words that follow it (the surname)."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PERSON"], name="GivenNameRecognizer", supported_language="en")

    def load(self) -> None:
        return None

    @staticmethod
    @lru_cache(maxsize=1)
    def _regex() -> re.Pattern[str]:
        listed = [n for n in given_names() if n not in _MONTH_WORDS and n not in _NOT_NAME]
        names = "|".join(re.escape(n) for n in sorted(listed, key=len, reverse=True))
        return re.compile(rf"\b(?:{names})\b(?:\s+(?:{_PARTICLE}\s+)?{_CAP}){{0,2}}")

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:  # noqa: ANN001
        out = []
        for m in self._regex().finditer(text):
            span = _clean_name_span(text, m.start(), m.end())
            if span:
                out.append(RecognizerResult("PERSON", span[0], span[1], 0.6))
        return out


def build_recognizers() -> list[EntityRecognizer]:
    """Every custom recognizer the scrubber adds to the stock registry."""
    cin = PatternRecognizer(
        supported_entity="MEDI_CAL_CIN", name="MediCalCinRecognizer",
        patterns=[Pattern("cin", r"\b9\d{7}[A-Za-z]\b", 0.75)],
        context=["cin", "medi-cal", "medical", "client index", "beneficiary", "member id", "bic", "meds"],
    )
    ssn = PatternRecognizer(
        supported_entity="US_SSN", name="SsnContextRecognizer",
        patterns=[Pattern("ssn-dashed", r"\b(?!000|666|9\d\d)\d{3}[- ](?!00)\d{2}[- ](?!0000)\d{4}\b", 0.6),
                  Pattern("ssn-bare", r"\b(?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4}\b", 0.3)],
        context=["ssn", "social security", "social", "ss#", "ss #"],
    )
    mrn = RegexEntityRecognizer(
        "MEDICAL_RECORD_NUMBER",
        [re.compile(r"(?i)\b(?:MRN|medical\s+record(?:\s+(?:number|no\.?|num|#))?|chart\s+(?:number|no\.?|#)|"
                    r"patient\s+id|record\s+(?:number|no\.?|#))\s*[:#]?\s*(?P<name>[A-Z]{0,3}-?\d{5,12})\b"),
         re.compile(r"\b(?P<name>[A-Z]{0,3}-?\d{5,12})\s*\((?:MRN|medical record number)\)"),
         re.compile(r"\b(?P<name>MR\d{6,10})\b")],
        0.85, "MrnRecognizer",
    )
    dl = PatternRecognizer(
        supported_entity="CA_DRIVER_LICENSE", name="CaDriverLicenseRecognizer",
        patterns=[Pattern("ca-dl", r"\b[A-Za-z]\d{7}\b", 0.5)],
        context=["license", "licence", "driver", "dl", "cdl", "id card", "dmv"],
    )
    address = RegexEntityRecognizer("STREET_ADDRESS", [ADDRESS_RE], 0.85, "StreetAddressRecognizer")
    zip_code = PatternRecognizer(
        supported_entity="ZIP_CODE", name="CaZipRecognizer",
        patterns=[Pattern("zip-after-state", r"(?<=\b(?:CA|Ca|California)\s)9[0-6]\d{3}(?:-\d{4})?\b", 0.85),
                  Pattern("zip", r"\b9[0-6]\d{3}(?:-\d{4})?\b", 0.1)],
        context=["zip", "zip code", "postal"],
    )
    age = RegexEntityRecognizer(
        "AGE_OVER_89",
        [re.compile(r"(?i)\b(?:9\d|1[01]\d)(?:[- ](?:years?|yrs?)[- ]old|\s?y/?o\b|[- ]year[- ]old)"),
         re.compile(r"(?i)\bage[ds]?\s+(?:9\d|1[01]\d)\b")],
        0.85, "AgeOver89Recognizer",
    )
    phone = PatternRecognizer(
        supported_entity="PHONE_NUMBER", name="UsPhoneFormatRecognizer",
        patterns=[Pattern("us-phone", r"(?:\+1[-. ]?|\b1-)?(?:\(\d{3}\)\s?|\b\d{3}[-. ])\d{3}[-. ]\d{4}\b", 0.7),
                  Pattern("us-phone-spaced", r"\+1\s\d{3}\s\d{3}\s\d{4}\b", 0.7)],
    )
    people = RegexEntityRecognizer("PERSON", [ROLE_NAME_RE, TITLE_NAME_RE, POSSESSIVE_RE, SENTENCE_START_NAME_RE],
                                   0.55, "ContextNameRecognizer", clean_names=True)
    last_first = RegexEntityRecognizer("PERSON", [LAST_FIRST_RE], 0.6, "LastFirstNameRecognizer", clean_names=True)
    places = RegexEntityRecognizer("LOCATION", [COUNTY_RE, CITY_STATE_RE, _gazetteer_regex()], 0.6,
                                   "CaPlaceRecognizer")
    dates = PatternRecognizer(
        supported_entity="DATE_TIME", name="ClinicalDateRecognizer",
        patterns=[
            Pattern("numeric", r"\b\d{1,2}[/-]\d{1,2}[/-](?:\d{4}|\d{2})\b", 0.6),
            Pattern("iso", r"\b(?:19|20)\d{2}-\d{1,2}-\d{1,2}\b", 0.7),
            Pattern("month-day-year", rf"(?i)\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b", 0.6),
            Pattern("day-month-year", rf"(?i)\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?(?:\s+\d{{4}})?\b", 0.6),
            Pattern("month-year", rf"(?i)\b{_MONTH},?\s+(?:19|20)\d{{2}}\b", 0.5),
        ],
    )
    return [dates, cin, ssn, mrn, dl, address, zip_code, age, phone, people, last_first, places, GivenNameRecognizer(),
            OfflineEmailRecognizer()]
