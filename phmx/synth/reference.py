"""Reference tables the generator draws from: counties, ZIPs, phone areas, clinical code lists.

Why a module of plain tuples: the generator runs millions of draws, so the tables are built once
as tuples (fast ``random.choice``) and kept beside their source notes. Codes marked ``[check]``
follow secondary sources; docs/synthetic-data.md lists what each one stands for.
"""

from __future__ import annotations

from dataclasses import dataclass

# The 58 California counties in alphabetical order. The CA county code (01-58, used by CSI and
# CalOMS) is the 1-based position; the FIPS code is 06 + the odd number 2*position-1.
CA_COUNTIES: tuple[str, ...] = (
    "Alameda", "Alpine", "Amador", "Butte", "Calaveras", "Colusa", "Contra Costa", "Del Norte",
    "El Dorado", "Fresno", "Glenn", "Humboldt", "Imperial", "Inyo", "Kern", "Kings", "Lake",
    "Lassen", "Los Angeles", "Madera", "Marin", "Mariposa", "Mendocino", "Merced", "Modoc", "Mono",
    "Monterey", "Napa", "Nevada", "Orange", "Placer", "Plumas", "Riverside", "Sacramento",
    "San Benito", "San Bernardino", "San Diego", "San Francisco", "San Joaquin", "San Luis Obispo",
    "San Mateo", "Santa Barbara", "Santa Clara", "Santa Cruz", "Shasta", "Sierra", "Siskiyou",
    "Solano", "Sonoma", "Stanislaus", "Sutter", "Tehama", "Trinity", "Tulare", "Tuolumne", "Ventura",
    "Yolo", "Yuba",
)


def county_code(fips5: str) -> str:
    """CA 2-digit county code (01 Alameda ... 58 Yuba) from a 5-digit FIPS code."""
    return f"{(int(fips5[2:]) + 1) // 2:02d}"


def county_name(fips5: str) -> str:
    return CA_COUNTIES[int(county_code(fips5)) - 1]


def valid_ca_fips(fips5: str) -> bool:
    if len(fips5) != 5 or not fips5.isdigit() or not fips5.startswith("06"):
        return False
    n = int(fips5[2:])
    return n % 2 == 1 and 1 <= n <= 115


# Real ZIP codes per city for the default and a few large counties: (city, (zips...)).
COUNTY_ZIPS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "06001": (
        ("OAKLAND", ("94601", "94602", "94603", "94605", "94606", "94607", "94609", "94610", "94611",
                     "94612", "94619", "94621")),
        ("BERKELEY", ("94702", "94703", "94704", "94705", "94709", "94710")),
        ("FREMONT", ("94536", "94538", "94539", "94555")),
        ("HAYWARD", ("94541", "94542", "94544", "94545")),
        ("SAN LEANDRO", ("94577", "94578", "94579")),
        ("ALAMEDA", ("94501", "94502")),
        ("LIVERMORE", ("94550", "94551")),
        ("PLEASANTON", ("94566", "94588")),
        ("UNION CITY", ("94587",)),
        ("NEWARK", ("94560",)),
        ("CASTRO VALLEY", ("94546", "94552")),
        ("DUBLIN", ("94568",)),
    ),
    "06013": (
        ("RICHMOND", ("94801", "94803", "94804", "94805")),
        ("SAN PABLO", ("94806",)),
        ("CONCORD", ("94518", "94519", "94520", "94521")),
        ("ANTIOCH", ("94509", "94531")),
        ("PITTSBURG", ("94565",)),
        ("WALNUT CREEK", ("94595", "94596", "94597", "94598")),
        ("MARTINEZ", ("94553",)),
        ("BRENTWOOD", ("94513",)),
        ("OAKLEY", ("94561",)),
        ("EL CERRITO", ("94530",)),
        ("PLEASANT HILL", ("94523",)),
        ("SAN RAMON", ("94582", "94583")),
    ),
    "06075": (
        ("SAN FRANCISCO", ("94102", "94103", "94104", "94105", "94107", "94108", "94109", "94110",
                           "94112", "94114", "94115", "94116", "94117", "94118", "94121", "94122",
                           "94123", "94124", "94127", "94131", "94132", "94133", "94134", "94158")),
    ),
    "06037": (
        ("LOS ANGELES", ("90001", "90002", "90003", "90004", "90006", "90011", "90016", "90018",
                         "90019", "90022", "90023", "90026", "90031", "90032", "90033", "90037",
                         "90043", "90044", "90057", "90063")),
        ("LONG BEACH", ("90802", "90804", "90805", "90806", "90813")),
        ("PASADENA", ("91101", "91103", "91104", "91106")),
        ("GLENDALE", ("91201", "91204", "91205", "91206")),
        ("LANCASTER", ("93534", "93535", "93536")),
        ("PALMDALE", ("93550", "93551", "93552")),
        ("POMONA", ("91766", "91767", "91768")),
        ("EL MONTE", ("91731", "91732", "91733")),
        ("COMPTON", ("90220", "90221", "90222")),
        ("INGLEWOOD", ("90301", "90302", "90303", "90304")),
        ("NORWALK", ("90650",)),
    ),
    "06059": (
        ("SANTA ANA", ("92701", "92703", "92704", "92705", "92706", "92707")),
        ("ANAHEIM", ("92801", "92802", "92804", "92805", "92806")),
        ("GARDEN GROVE", ("92840", "92841", "92843", "92844")),
        ("WESTMINSTER", ("92683",)),
    ),
    "06073": (
        ("SAN DIEGO", ("92101", "92102", "92105", "92113", "92114", "92115", "92117", "92126", "92139")),
        ("CHULA VISTA", ("91910", "91911", "91913", "91915")),
        ("EL CAJON", ("92019", "92020", "92021")),
        ("OCEANSIDE", ("92054", "92056", "92057")),
    ),
    "06085": (
        ("SAN JOSE", ("95110", "95111", "95112", "95116", "95117", "95122", "95123", "95127", "95133")),
        ("SUNNYVALE", ("94085", "94086", "94087")),
        ("SANTA CLARA", ("95050", "95051", "95054")),
        ("GILROY", ("95020",)),
    ),
    "06067": (
        ("SACRAMENTO", ("95811", "95814", "95815", "95817", "95820", "95822", "95823", "95824",
                        "95828", "95838")),
        ("ELK GROVE", ("95624", "95757", "95758")),
        ("CITRUS HEIGHTS", ("95610", "95621")),
    ),
    "06019": (
        ("FRESNO", ("93701", "93702", "93703", "93704", "93705", "93706", "93710", "93722", "93726",
                    "93727")),
        ("CLOVIS", ("93611", "93612", "93619")),
    ),
}

# Telephone area codes by county (a few per county; generic fallback below).
AREA_CODES: dict[str, tuple[str, ...]] = {
    "06001": ("510", "510", "510", "341", "925"),
    "06013": ("925", "925", "510", "341"),
    "06075": ("415", "415", "628"),
    "06037": ("213", "323", "310", "818", "626", "562", "661", "747", "424"),
    "06059": ("714", "657", "949"),
    "06073": ("619", "858", "760"),
    "06085": ("408", "669", "650"),
    "06067": ("916", "279"),
    "06019": ("559",),
}
GENERIC_AREA_CODES = ("530", "559", "661", "707", "760", "805", "831", "909", "951", "209")


@dataclass(frozen=True)
class CountyGeo:
    """What the generator needs about one county: codes, city/ZIP pairs, phone areas."""

    fips: str
    code: str
    name: str
    city_zips: tuple[tuple[str, str], ...]
    area_codes: tuple[str, ...]


def county_geo(fips5: str) -> CountyGeo:
    """City/ZIP pairs for a county; counties without a table get plausible 9xxxx ZIPs."""
    name = county_name(fips5)
    rows = COUNTY_ZIPS.get(fips5)
    if rows:
        pairs = tuple((city, z) for city, zips in rows for z in zips)
    else:
        n = int(fips5[2:])
        # Deterministic generic ZIPs inside California's 90000-96199 range.
        base = 93000 + (n * 37) % 3000
        pairs = tuple((name.upper(), f"{base + k * 3:05d}") for k in range(8))
    return CountyGeo(fips5, county_code(fips5), name, pairs, AREA_CODES.get(fips5, GENERIC_AREA_CODES))


STREET_SUFFIXES = ("ST", "AVE", "BLVD", "DR", "WAY", "CT", "RD", "LN", "PL")
SHELTERS = ("GENERAL DELIVERY", "HOMELESS", "NO FIXED ADDRESS", "1 SHELTER WAY")

# ---------------------------------------------------------------- race, ethnicity, language
# Ethnic-origin groups used to draw names, with CA Medi-Cal-like shares. Each group maps to
# CDC race / ethnicity codes (HL7 0005 / 0189, used by plans and CAIR) and to the county code
# set used in CSI/CalOMS files [check: county code lists, see docs].
GROUPS: tuple[tuple[str, float], ...] = (
    ("hispanic", 0.50), ("white", 0.18), ("black", 0.08), ("chinese", 0.05), ("vietnamese", 0.05),
    ("filipino", 0.04), ("korean", 0.02), ("other", 0.08),
)
CDC_RACE = {
    "hispanic": ("2106-3", "2131-1", "2131-1", ""), "white": ("2106-3",), "black": ("2054-5",),
    "chinese": ("2034-7", "2028-9"), "vietnamese": ("2047-9", "2028-9"), "filipino": ("2036-2", "2028-9"),
    "korean": ("2040-4", "2028-9"), "other": ("2131-1", "1002-5", "2076-8", ""),
}
CDC_HISPANIC, CDC_NOT_HISPANIC = "2135-2", "2186-5"
# County (CSI / CalOMS style) race codes [check]: 1 White, 2 Black, 3 American Indian,
# 4 Alaska Native, 5 Asian Indian, 6 Cambodian, 7 Chinese, 8 Filipino, 9 Japanese, A Korean,
# B Laotian, C Vietnamese, D Other Asian, E Native Hawaiian, F Samoan, G Other Pacific Islander,
# H Other.
COUNTY_RACE = {
    "hispanic": ("1", "H", "H"), "white": ("1",), "black": ("2",), "chinese": ("7",),
    "vietnamese": ("C",), "filipino": ("8",), "korean": ("A",), "other": ("H", "3", "5", "D", "F"),
}
# County ethnicity [check]: 1 Mexican/Mexican American, 2 Cuban, 3 Puerto Rican,
# 4 Other Hispanic/Latino, 5 Not Hispanic.
COUNTY_ETH_HISPANIC = ("1", "1", "1", "4", "4", "2", "3")
COUNTY_ETH_NOT = "5"
LANGUAGES = {
    "hispanic": ("spa", "spa", "eng"), "white": ("eng",), "black": ("eng",),
    "chinese": ("zho", "yue", "eng"), "vietnamese": ("vie", "vie", "eng"), "filipino": ("tgl", "eng", "eng"),
    "korean": ("kor", "eng"), "other": ("eng", "eng", "rus", "hye", "fas", "ara"),
}

# ---------------------------------------------------------------- plans and aid codes
PLANS: tuple[tuple[str, str], ...] = (("mcp_bluecoast", "BLC001"), ("mcp_sierra", "SRA001"))
PLAN_LOCAL_PREFIX = {"mcp_bluecoast": "BC", "mcp_sierra": "SR"}
# Medi-Cal aid codes [check]: M1 adult expansion 19-64, M3 parent/caretaker, 7U/M5 children,
# 10 SSI aged, 60 SSI disabled, 0U pregnant (illustrative set).
AID_CHILD = ("M5", "M5", "7U", "0C")
AID_ADULT = ("M1", "M1", "M1", "M3", "60")
AID_SENIOR = ("10", "10", "60", "M1")

# ---------------------------------------------------------------- clinical code lists
# ICD-10-CM without the dot.
DX_MH_ED = ("F329", "F322", "F331", "F410", "F411", "F419", "F431", "F4310", "F4312", "F209", "F250",
            "F259", "F319", "F3130", "F603", "F909", "F918", "R45851", "T1491XA")
# Intentional self-harm: the injury or T14.91 is principal, the X71-X83 cause code secondary.
DX_SELF_HARM_CAUSE = ("X781XXA", "X780XXA", "X838XXA", "X711XXA")
DX_SMI = ("F209", "F200", "F250", "F251", "F259", "F319", "F3110", "F312", "F3181", "F332", "F333")
DX_MH_MILD = ("F329", "F321", "F419", "F411", "F4321", "F4310", "F900", "F902", "F911", "F4322")
DX_SUD = ("F1010", "F1020", "F10239", "F1120", "F1123", "F1110", "F1210", "F1220", "F1410", "F1420",
          "F1510", "F1520", "F1910", "F1920", "F1320")
DX_OVERDOSE = ("T401X1A", "T404X1A", "T402X1A", "T405X1A", "T403X1A", "T40601A", "T407X1A")
DX_SUD_OPIOID = ("F1120", "F1123", "F1110", "F1121")
DX_CHRONIC = {
    "diabetes": ("E119", "E1165", "E1122", "E1140"),
    "hypertension": ("I10",),
    "asthma": ("J45909", "J45901", "J4530", "J4540"),
    "copd": ("J449", "J441"),
    "chf": ("I509", "I5022", "I5032"),
}
DX_ED_GENERAL = ("R109", "R0789", "J069", "S0990XA", "S6991XA", "N390", "R51", "K5900", "J0390", "R509",
                 "S93401A", "L03115", "M545")
DX_IP_GENERAL = ("J189", "A419", "N390", "K8590", "I214", "J441", "E1165", "I509", "K5720", "L03115",
                 "O80", "S72001A")
DX_ROUTINE = ("Z0000", "Z0001", "Z00129", "Z00121", "Z23", "J069", "M545", "R05", "E785", "K219", "Z1331")
DX_HOMELESS = ("Z5900", "Z5901", "Z5902")
# Z59.41 food insecurity, Z59.48 other specified lack of adequate food (ICD-10-CM FY2024)
DX_FOOD_INSECURITY = ("Z5941", "Z5941", "Z5948")
#: Members whose food insecurity a provider codes in the year (Z59.4x on a claim): social-needs Z
#: codes are rarely coded (CMS OMH Data Highlight 2023: Z codes on ~1.6% of Medicare FFS members),
#: more often for unhoused members.
FOOD_INSECURITY_CODED = 0.03
FOOD_INSECURITY_CODED_HOMELESS = 0.25
CPT_ED = ("99283", "99284", "99285", "99284")
CPT_OFFICE = ("99213", "99214", "99213", "99212", "99203", "99204")
CPT_MH_OUTPT = ("90834", "90837", "90832", "90791", "99214", "90847", "H0031", "H0032")
CPT_SUD_OUTPT = ("H0004", "H0005", "H0001", "99408", "H0020", "99214")
CPT_WELL_CHILD = ("99381", "99382", "99383", "99391", "99392", "99393", "99394")
CPT_WELL_ADULT = ("99385", "99386", "99395", "99396", "99397")
CPT_IP = ("99222", "99223", "99231", "99232", "99238")
REV_ED = "0450"
REV_IP_GENERAL = ("0100", "0110", "0120", "0111")
REV_IP_PSYCH = ("0114", "0124", "0114")
POS_MH_FOLLOWUP = ("11", "11", "02", "10", "53", "22")
POS_SUD_FOLLOWUP = ("57", "11", "02", "10", "22")

# Representative NDCs (11 digits, 5-4-2 without hyphens) per therapy [check against the FDA
# NDC directory before using them as a value set].
NDC = {
    "diabetes": (("00093104801", 30, 60), ("68180051601", 90, 180), ("00002771501", 30, 3)),
    "hypertension": (("68180051301", 30, 30), ("00378181701", 90, 90), ("69097012705", 30, 30)),
    "asthma": (("59310057922", 30, 1), ("00173068220", 30, 1), ("00487950101", 30, 75)),
    "copd": (("00597007541", 30, 1), ("00173071920", 30, 1)),
    "chf": (("00378018001", 30, 30), ("00093731056", 30, 60)),
    "mh": (("16729021401", 30, 30), ("00093717656", 30, 30), ("68180035209", 30, 30)),
    "smi": (("00378733393", 30, 60), ("59762010001", 30, 30), ("00093701656", 30, 30)),
    "moud": (("12496120803", 30, 60), ("00054018913", 30, 60), ("50383092493", 7, 14)),
    "naloxone": (("69547035302", 1, 2),),
    "acute": (("00093310905", 10, 20), ("00781522631", 7, 21), ("00904198861", 5, 10)),
}

# Dental (CDT).
CDT_EVAL = {"periodic": "D0120", "under3": "D0145", "comprehensive": "D0150"}
CDT_FLUORIDE_VARNISH, CDT_FLUORIDE_TOPICAL = "D1206", "D1208"
CDT_OTHER_CHILD = ("D1120", "D1120", "D0272", "D1351", "D2391", "D2930", "D7140")
CDT_OTHER_ADULT = ("D1110", "D1110", "D0210", "D2391", "D2392", "D7140", "D4341", "D2740")
TOOTH_NEEDED = frozenset({"D1351", "D2391", "D2392", "D2930", "D7140", "D2740"})
PRIMARY_TEETH = tuple("ABCDEFGHIJKLMNOPQRST")
PERMANENT_TEETH = tuple(str(n) for n in range(1, 33))

# County mental health (CSI). Mode of service: 05 24-hour, 10 day services, 15 outpatient,
# 45 outreach, 60 support. Service function ranges (DHCS provider file definitions, public
# county training material): mode 15: 01-09 case management/brokerage, 10-19 collateral,
# 30-59 mental health services (58 TBS), 60-69 medication support, 70-79 crisis intervention;
# mode 05: 10-18 hospital inpatient, 20-29 psychiatric health facility, 40-49 adult crisis
# residential; mode 10: 20-24 crisis stabilisation (ER), 25-29 crisis stabilisation (urgent
# care), 85-89 day treatment intensive full day, 95-99 day rehabilitation full day;
# mode 45: 10-19 mental health promotion, 20-29 community client services; mode 60 [check]:
# 20-29 case management support, 40-49 life support/board and care.
CSI_OUTPATIENT = (("15", "01", 30, 60), ("15", "04", 20, 45), ("15", "30", 45, 60), ("15", "31", 50, 60),
                  ("15", "40", 45, 90), ("15", "60", 15, 30), ("15", "61", 20, 30), ("15", "10", 30, 45))
CSI_FOLLOWUP = (("15", "30", 45, 60), ("15", "31", 50, 60), ("15", "60", 15, 30), ("15", "01", 30, 60))
CSI_CRISIS = ("15", "70", 60, 120)
CSI_OTHER = (("10", "95", 1, 0), ("45", "20", 30, 60), ("60", "40", 1, 0), ("05", "20", 1, 0))
# CSI periodic record codes [check]: living arrangement 01 house/apartment, 02 with family,
# 03 supported housing, 04 board and care, 05 institutional, 06 jail, 07 homeless;
# employment 1 full-time, 2 part-time, 3 unemployed seeking, 4 not in labour force, 5 student;
# education: highest grade completed 00-20 (13-16 college years).
CSI_LIVING_HOUSED = ("01", "01", "02", "02", "03", "04")
CSI_LIVING_HOMELESS = "07"
CSI_EMPLOYMENT_ADULT = ("1", "2", "3", "4", "4", "4")

# CalOMS Treatment [check exact code lists against the DHCS CalOMS Tx data dictionary]:
# primary drug: 1 heroin, 2 alcohol, 3 barbiturates, 4 other sedatives, 5 methamphetamine,
# 6 other amphetamines, 7 other stimulants, 8 cocaine/crack, 9 marijuana/hashish, 10 PCP,
# 11 other hallucinogens, 12 tranquilizers, 14 non-prescription methadone, 15 oxycodone,
# 16 other opiates/synthetics (fentanyl), 17 inhalants, 18 OTC, 19 ecstasy, 20 other club drugs,
# 21 other. Service type: 1 withdrawal management (detox), 2 residential, 3 outpatient drug
# free, 4 intensive outpatient, 5 narcotic treatment program (methadone/buprenorphine).
# Discharge status: 1 completed - referred, 2 completed - not referred, 3 left, satisfactory
# progress (standard), 4 left, satisfactory (administrative), 5 left, unsatisfactory (standard),
# 6 left, unsatisfactory (administrative), 7 death, 8 incarceration.
CALOMS_DRUG_DX = (
    ("2", "F1020"), ("2", "F1010"), ("5", "F1520"), ("5", "F1510"), ("1", "F1120"), ("16", "F1120"),
    ("16", "F1123"), ("15", "F1120"), ("9", "F1220"), ("8", "F1420"), ("12", "F1320"),
)
CALOMS_OPIOID_DRUGS = frozenset({"1", "14", "15", "16"})
CALOMS_SERVICE_TYPES = ("3", "3", "3", "4", "4", "2", "1", "5", "5")
CALOMS_DISCHARGE = ("1", "2", "3", "4", "5", "6", "6", "5", "8")
CALOMS_DECLINED, CALOMS_UNKNOWN, CALOMS_UNABLE = "99900", "99901", "99904"

# Immunizations (CVX -> manufacturers MVX), HL7 0162 routes / 0163 sites.
CVX_MVX = {
    "08": ("MSD", "SKB"), "110": ("SKB",), "116": ("MSD",), "119": ("SKB",), "122": ("",),
    "20": ("SKB", "PMC"), "106": ("PMC",), "120": ("PMC",), "130": ("PMC", "SKB"), "49": ("MSD",),
    "48": ("PMC",), "17": ("",), "133": ("PFR",), "152": ("",), "215": ("MSD",), "216": ("PFR",),
    "10": ("PMC",), "03": ("MSD",), "94": ("MSD",), "21": ("MSD",), "83": ("SKB", "MSD"),
    "140": ("SKB", "PMC", "SEQ"), "141": ("SEQ", "PMC"), "150": ("SKB", "PMC", "SEQ"), "153": ("SEQ",),
    "155": ("PMC",), "158": ("SEQ", "SKB"), "115": ("SKB", "PMC"), "165": ("MSD",), "114": ("PMC",),
    "136": ("SKB",), "62": ("MSD",),
}
ORAL_CVX = frozenset({"116", "119", "122"})
FLU_CVX = ("140", "141", "150", "150", "153", "155", "158", "158")
