"""Name pools for a California Medi-Cal-like population, and the nickname table.

Why not call Faker per person: Faker costs ~50 us a call, too slow for a million people. Its
locale data (es_MX, en_US, zh_CN romanized, vi_VN) is read once into weighted pools, with a heavy
head of very common names on purpose (Maria Garcia, Jose Hernandez, the Nguyen and Tran
families) so that record linkage meets the collisions it meets in real Medi-Cal data.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from faker.providers.person.en_US import Provider as EnUS
from faker.providers.person.es_MX import Provider as EsMX
from faker.providers.person.zh_CN import Provider as ZhCN


def strip_accents(s: str) -> str:
    """ASCII-fold a name the way MEDS and most plan systems store it (Muñoz -> Munoz)."""
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")


@dataclass(frozen=True)
class Pool:
    """Values with cumulative weights, ready for ``random.choices(values, cum_weights=...)``."""

    values: tuple[str, ...]
    cum: tuple[float, ...]


def _pool(head: Mapping[str, float], tail: list[str] | tuple[str, ...], tail_weight: float = 1.0) -> Pool:
    weights: dict[str, float] = dict(head)
    for name in tail:
        weights.setdefault(name, tail_weight)
    values = tuple(weights)
    return Pool(values, tuple(itertools.accumulate(weights[v] for v in values)))


HISPANIC_FAMILY_HEAD = {
    "Garcia": 60, "Hernandez": 52, "Lopez": 45, "Martinez": 44, "Gonzalez": 42, "Rodriguez": 40,
    "Perez": 30, "Sanchez": 30, "Ramirez": 28, "Flores": 25, "Torres": 18, "Rivera": 16, "Gomez": 16,
    "Diaz": 15, "Cruz": 14, "Reyes": 14, "Morales": 13, "Gutierrez": 13, "Ortiz": 12, "Chavez": 12,
    "Ruiz": 11, "Ramos": 11, "Mendoza": 11, "Vasquez": 10, "Castillo": 10, "Jimenez": 9, "Moreno": 9,
    "Romero": 9, "Alvarez": 9, "Herrera": 9, "Medina": 8, "Aguilar": 8, "Vargas": 8, "Guzman": 8,
    "Munoz": 7, "Castro": 7, "Juarez": 7, "Salazar": 7, "De La Cruz": 4, "De Leon": 4,
}
HISPANIC_MALE_HEAD = {
    "Jose": 60, "Juan": 35, "Luis": 30, "Carlos": 28, "Jesus": 25, "Miguel": 25, "Francisco": 20,
    "Antonio": 20, "Jorge": 18, "Alejandro": 16, "Daniel": 16, "David": 14, "Eduardo": 12, "Manuel": 12,
    "Roberto": 12, "Ricardo": 10, "Mario": 10, "Fernando": 10, "Javier": 10, "Oscar": 10, "Rafael": 8,
    "Guadalupe": 4, "Angel": 10, "Pedro": 9, "Sergio": 9, "Ignacio": 5, "Enrique": 7, "Guillermo": 6,
    "Alberto": 7, "Gerardo": 7, "Ramon": 6,
}
HISPANIC_FEMALE_HEAD = {
    "Maria": 70, "Guadalupe": 20, "Ana": 20, "Rosa": 16, "Juana": 12, "Veronica": 12, "Leticia": 10,
    "Gabriela": 12, "Alejandra": 12, "Elizabeth": 12, "Patricia": 12, "Yesenia": 8, "Margarita": 8,
    "Adriana": 10, "Martha": 8, "Silvia": 8, "Laura": 10, "Sofia": 10, "Isabella": 8, "Camila": 8,
    "Dolores": 4, "Josefina": 4, "Rosario": 4, "Esmeralda": 6, "Jennifer": 8, "Jessica": 8,
}
VIETNAMESE_FAMILY = {"Nguyen": 120, "Tran": 40, "Le": 30, "Pham": 25, "Hoang": 8, "Huynh": 12, "Phan": 8,
                     "Vu": 8, "Vo": 10, "Dang": 7, "Bui": 6, "Do": 7, "Ho": 6, "Ngo": 5, "Duong": 4, "Ly": 5,
                     "Truong": 5, "Dinh": 4, "Lam": 4}
VIETNAMESE_MALE = ("Minh", "Tuan", "Hung", "Nam", "Long", "Thanh", "Duc", "Khang", "Phuc", "Quang",
                   "Vinh", "Bao", "Huy", "Tri", "Dung", "Hai", "Son", "Kevin", "Peter", "Tony", "David")
VIETNAMESE_FEMALE = ("Linh", "Mai", "Lan", "Huong", "Ngoc", "Thao", "Trang", "Hoa", "Anh", "Thu", "Kim",
                     "Hanh", "Nhi", "Vy", "Tiffany", "Jennifer", "Vivian", "Christine", "Julie")
KOREAN_FAMILY = {"Kim": 40, "Lee": 35, "Park": 25, "Choi": 10, "Jung": 8, "Kang": 7, "Cho": 7, "Yoon": 6,
                 "Jang": 5, "Lim": 5, "Han": 5, "Shin": 5, "Oh": 4, "Seo": 4, "Kwon": 4, "Song": 3}
KOREAN_MALE = ("Min-jun", "Ji-hoon", "Sung", "Young", "Jae", "Dong-hyun", "Hyun", "Daniel", "John",
               "David", "James", "Joseph")
KOREAN_FEMALE = ("Ji-yeon", "Soo-jin", "Min-ji", "Eun", "Hye-jin", "Grace", "Esther", "Sarah",
                 "Christina", "Jennifer")
FILIPINO_FAMILY = {"Santos": 20, "Reyes": 18, "Cruz": 16, "Bautista": 12, "Ocampo": 6, "Garcia": 10,
                   "Mendoza": 8, "Torres": 6, "Tomas": 4, "Andrada": 3, "Castillo": 5, "Flores": 6,
                   "Villanueva": 6, "Ramos": 7, "Dela Cruz": 8, "Aquino": 5, "Manalo": 4, "Dizon": 4,
                   "Pascual": 4, "Navarro": 4, "Soriano": 3, "Domingo": 3, "Mercado": 3}
FILIPINO_MALE = ("Jose", "Mark", "John", "Michael", "Rommel", "Ronaldo", "Jerome", "Christian", "Paolo",
                 "Angelo", "Joel", "Rodel", "Jun", "Ramon", "Emmanuel")
FILIPINO_FEMALE = ("Maria", "Mary Grace", "Kristine", "Jocelyn", "Rowena", "Marites", "Lorna", "Angelica",
                   "Princess", "Joy", "Cherry", "Rosalie", "Jasmine", "Michelle")
CHINESE_FAMILY_HEAD = {"Chen": 30, "Wong": 30, "Li": 22, "Lee": 20, "Wang": 20, "Zhang": 15, "Liu": 15,
                       "Huang": 12, "Chan": 15, "Lin": 12, "Wu": 10, "Zhou": 8, "Yang": 8, "Ng": 8,
                       "Leung": 6, "Cheung": 6, "Lau": 6, "Tam": 5, "Ho": 5, "Fong": 4}
CHINESE_ENGLISH_GIVEN_M = ("Kevin", "Eric", "Jason", "Michael", "David", "Andy", "Vincent", "Raymond")
CHINESE_ENGLISH_GIVEN_F = ("Amy", "Jenny", "Grace", "Helen", "Emily", "Vivian", "Cindy", "Irene")
BLACK_FAMILY_HEAD = {"Johnson": 30, "Williams": 30, "Smith": 25, "Jones": 22, "Brown": 22, "Jackson": 18,
                     "Davis": 18, "Thomas": 12, "Harris": 12, "Robinson": 12, "Taylor": 10, "Wilson": 10,
                     "Moore": 8, "White": 8, "Washington": 8, "Thompson": 8, "Lewis": 8, "Walker": 7}
BLACK_MALE_EXTRA = {"DeShawn": 4, "Jamal": 5, "Darnell": 4, "Marcus": 6, "Terrell": 4, "Andre": 5,
                    "Malik": 4, "Tyrone": 3, "Isaiah": 5, "Elijah": 5, "Jaylen": 4}
BLACK_FEMALE_EXTRA = {"Aaliyah": 5, "Imani": 4, "Keisha": 4, "Latoya": 4, "Tamika": 3, "Shaniqua": 2,
                      "Jasmine": 6, "Destiny": 5, "Diamond": 3, "Ebony": 3, "Aisha": 4}
OTHER_FAMILY = {"Petrosyan": 4, "Sargsyan": 3, "Hakobyan": 3, "Ivanov": 3, "Kowalski": 2, "Ahmadi": 3,
                "Hosseini": 3, "Khan": 5, "Singh": 6, "Patel": 8, "Sharma": 3, "Haddad": 2, "Mohammed": 3,
                "Saechao": 3, "Vang": 5, "Xiong": 5, "Lor": 3, "Tanaka": 2, "Yamamoto": 2, "Begay": 2,
                "Tupou": 2, "Faleolo": 2}
OTHER_MALE = ("Armen", "Ahmad", "Mohammed", "Ali", "Raj", "Arjun", "Hamid", "Yusuf", "Ivan", "Tou",
              "Kou", "Chue", "Hiroshi", "Sione", "Omar", "Michael", "David")
OTHER_FEMALE = ("Ani", "Fatima", "Maryam", "Priya", "Anjali", "Zahra", "Olga", "Mai", "Pa", "Yer",
                "Yuki", "Mele", "Leila", "Sarah", "Emily")
# Spanish spellings some sources keep (county and registry systems accept Unicode; MEDS does not).
ACCENTED: dict[str, str] = {
    "Jose": "José", "Jesus": "Jesús", "Ramon": "Ramón", "Munoz": "Muñoz", "Ramirez": "Ramírez",
    "Hernandez": "Hernández", "Gonzalez": "González", "Rodriguez": "Rodríguez", "Lopez": "López",
    "Martinez": "Martínez", "Perez": "Pérez", "Sanchez": "Sánchez", "Gomez": "Gómez", "Diaz": "Díaz",
    "Gutierrez": "Gutiérrez", "Chavez": "Chávez", "Vasquez": "Vásquez", "Jimenez": "Jiménez",
    "Alvarez": "Álvarez", "Juarez": "Juárez", "Sofia": "Sofía", "Angel": "Ángel", "Nunez": "Núñez",
    "Ivan": "Iván", "Andres": "Andrés", "Maria": "María", "Raul": "Raúl", "Ines": "Inés",
}


def _from_faker(provider_attr: object) -> list[str]:
    if isinstance(provider_attr, dict):
        return list(provider_attr)
    return list(provider_attr)  # type: ignore[call-overload]


def _weighted_from_faker(provider_attr: object, scale: float) -> dict[str, float]:
    if isinstance(provider_attr, dict):
        return {k: float(v) * scale for k, v in provider_attr.items()}
    return {k: 1.0 for k in provider_attr}  # type: ignore[attr-defined]


@dataclass(frozen=True)
class GroupNames:
    male: Pool
    female: Pool
    family: Pool


@lru_cache(maxsize=1)
def name_pools() -> dict[str, GroupNames]:
    """Weighted given/family name pools per ethnic-origin group (built once per process)."""
    es_m = [strip_accents(n) for n in _from_faker(EsMX.first_names_male)]
    es_f = [strip_accents(n) for n in _from_faker(EsMX.first_names_female)]
    es_fam = [strip_accents(n) for n in _from_faker(EsMX.last_names)]
    us_m = _weighted_from_faker(EnUS.first_names_male, 1000.0)
    us_f = _weighted_from_faker(EnUS.first_names_female, 1000.0)
    us_fam = _weighted_from_faker(EnUS.last_names, 1000.0)
    zh_fam = list(ZhCN.last_romanized_names)
    zh_given = list(ZhCN.first_romanized_names)
    us_m_pool = Pool(tuple(us_m), tuple(itertools.accumulate(us_m.values())))
    us_f_pool = Pool(tuple(us_f), tuple(itertools.accumulate(us_f.values())))
    return {
        "hispanic": GroupNames(_pool(HISPANIC_MALE_HEAD, es_m, 0.6), _pool(HISPANIC_FEMALE_HEAD, es_f, 0.6),
                               _pool(HISPANIC_FAMILY_HEAD, es_fam, 0.5)),
        "white": GroupNames(us_m_pool, us_f_pool, Pool(tuple(us_fam), tuple(itertools.accumulate(us_fam.values())))),
        "black": GroupNames(_pool(us_m | {k: v * 6 for k, v in BLACK_MALE_EXTRA.items()}, []),
                            _pool(us_f | {k: v * 6 for k, v in BLACK_FEMALE_EXTRA.items()}, []),
                            _pool(BLACK_FAMILY_HEAD, list(us_fam)[:300], 0.3)),
        "chinese": GroupNames(_pool({n: 2 for n in CHINESE_ENGLISH_GIVEN_M}, zh_given),
                              _pool({n: 2 for n in CHINESE_ENGLISH_GIVEN_F}, zh_given),
                              _pool(CHINESE_FAMILY_HEAD, zh_fam, 0.5)),
        "vietnamese": GroupNames(_pool({}, VIETNAMESE_MALE), _pool({}, VIETNAMESE_FEMALE), _pool(VIETNAMESE_FAMILY, [])),
        "filipino": GroupNames(_pool({}, FILIPINO_MALE), _pool({}, FILIPINO_FEMALE), _pool(FILIPINO_FAMILY, [])),
        "korean": GroupNames(_pool({}, KOREAN_MALE), _pool({}, KOREAN_FEMALE), _pool(KOREAN_FAMILY, [])),
        "other": GroupNames(_pool({}, OTHER_MALE), _pool({}, OTHER_FEMALE), _pool(OTHER_FAMILY, [])),
    }


# Nicknames and short forms that sources record instead of the legal given name.
NICKNAMES: dict[str, tuple[str, ...]] = {
    "Robert": ("Bob", "Rob", "Bobby"), "William": ("Bill", "Will", "Billy"), "Richard": ("Rick", "Dick", "Rich"),
    "James": ("Jim", "Jimmy"), "John": ("Jack", "Johnny"), "Michael": ("Mike",), "Elizabeth": ("Liz", "Beth", "Betty"),
    "Margaret": ("Peggy", "Maggie"), "Katherine": ("Kate", "Kathy"), "Catherine": ("Cathy", "Kate"),
    "Jennifer": ("Jen", "Jenny"), "Christopher": ("Chris",), "Anthony": ("Tony",), "Joseph": ("Joe", "Joey"),
    "Daniel": ("Dan", "Danny"), "David": ("Dave",), "Thomas": ("Tom", "Tommy"), "Charles": ("Charlie", "Chuck"),
    "Edward": ("Ed", "Eddie"), "Patricia": ("Pat", "Patty", "Trish"), "Susan": ("Sue",), "Deborah": ("Debbie", "Deb"),
    "Rebecca": ("Becky",), "Samuel": ("Sam",), "Benjamin": ("Ben",), "Alexander": ("Alex",), "Nicholas": ("Nick",),
    "Matthew": ("Matt",), "Andrew": ("Andy", "Drew"), "Steven": ("Steve",), "Kimberly": ("Kim",),
    "Jessica": ("Jess",), "Victoria": ("Vicky", "Tori"), "Guadalupe": ("Lupe", "Lupita"),
    "Francisco": ("Paco", "Pancho", "Frank"), "Jose": ("Pepe", "Joe"), "Jesus": ("Chuy",), "Ignacio": ("Nacho",),
    "Alejandro": ("Alex",), "Roberto": ("Beto",), "Alberto": ("Beto", "Al"), "Enrique": ("Kike", "Henry"),
    "Eduardo": ("Lalo", "Eddie"), "Manuel": ("Manny",), "Guillermo": ("Memo", "Willie"), "Dolores": ("Lola",),
    "Rosario": ("Chayo",), "Ramon": ("Moncho",), "Rafael": ("Rafa",), "Josefina": ("Josie",),
    "Antonio": ("Tony",), "Gerardo": ("Jerry",), "Margarita": ("Maggie",), "Gabriela": ("Gaby",),
    "Alejandra": ("Alex", "Ale"), "Veronica": ("Vero",), "Fernando": ("Nando",), "Ricardo": ("Rick",),
    "Jorge": ("George",), "Juan": ("John",), "Pedro": ("Pete",), "Luis": ("Louie",), "Miguel": ("Mike",),
    "Rommel": ("Mel",), "Emmanuel": ("Manny",), "Marites": ("Tess",), "Rowena": ("Weng",),
}


def given_variant(rng, given: str) -> str:  # noqa: ANN001 - random.Random
    """A nickname for the given name if the table has one, else the name itself."""
    options = NICKNAMES.get(given)
    return rng.choice(options) if options else given
