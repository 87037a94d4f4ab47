"""Who receives feeds: the 61 local health jurisdictions and the plans that submit to the hub.

The one recipient catalogue: the consent stage decides for these recipients and publish serves
them, so publish never meets a recipient the consent stage did not decide for.

* LHJs: the 58 counties and the city health departments of Berkeley, Long Beach and Pasadena,
  named in ``mappings/geo/lhj.yaml`` (the same table identity uses to set ``gold.member.lhj``).
  Recipient id ``lhj_<slug>``: ``lhj_alameda``, ``lhj_long_beach``.
* Plans: the distinct managed care plan submitters (``mcp_*``) found in ``silver.coverage``
  (the plan's own enrollment): ``mcp_bluecoast``, ``mcp_sierra``.
* ECM providers: the Enhanced Care Management providers that send return transmission files
  (``ecm_*`` submitters, e.g. ``ecm_p001``), each known by the NPIs it sends under. They are
  treating providers for the members a plan ASSIGNED to one of those NPIs
  (``silver.ecm_assignment``) and for no one else: the consent stage decides for them per
  assigned member (:func:`ecm_assignments`), and their package holds only those members.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from phmx.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

LHJ_FILE = Path(__file__).resolve().parents[1] / "mappings" / "geo" / "lhj.yaml"
LHJ_PREFIX = "lhj_"
PLAN_PREFIX = "mcp_"
ECM_PREFIX = "ecm_"
STATE = "California"


def recipient_id(lhj: str) -> str:
    """``lhj_<slug>``: the recipient id of a local health jurisdiction (e.g. lhj_long_beach)."""
    return LHJ_PREFIX + re.sub(r"[^a-z0-9]+", "_", lhj.lower()).strip("_")


@lru_cache(maxsize=2)
def lhj_names(path: str = str(LHJ_FILE)) -> tuple[str, ...]:
    """The 61 LHJ names (counties, then the three cities), from the versioned geography table."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the LHJ table {path}: {type(exc).__name__}") from exc
    counties = doc.get("counties")
    if not isinstance(counties, dict):
        raise ConfigError(f"{path}: key 'counties' must map county FIPS to names")
    cities = doc.get("cities") or {}
    return tuple(str(v) for _, v in sorted(counties.items())) + tuple(sorted(str(c) for c in cities))


def lhj_by_recipient() -> dict[str, str]:
    """``{recipient id: LHJ name}`` for all 61 LHJs."""
    return {recipient_id(n): n for n in lhj_names()}


def is_lhj(recipient: str) -> bool:
    return recipient.startswith(LHJ_PREFIX)


def is_plan(recipient: str) -> bool:
    return recipient.startswith(PLAN_PREFIX)


def is_ecm_provider(recipient: str) -> bool:
    return recipient.startswith(ECM_PREFIX)


def lhj_name(recipient: str) -> str:
    """The LHJ name of an ``lhj_*`` recipient id (ConfigError if it is not one of the 61)."""
    names = lhj_by_recipient()
    if recipient not in names:
        raise ConfigError(f"unknown LHJ recipient {recipient!r}", hint="recipient ids are lhj_<county or city>")
    return names[recipient]


def plan_recipients(spark: SparkSession) -> list[str]:
    """Plan submitters with enrollment in silver.coverage (the plans whose care teams get a feed)."""
    from pyspark.sql import functions as F

    from phmx import lakehouse
    from phmx.tables import COVERAGE

    rows = (lakehouse.read(spark, COVERAGE).where(F.col("source").startswith(PLAN_PREFIX))
            .select("source").distinct().collect())
    return sorted({submitter_of(r[0]) for r in rows if r[0]})


def member_recipients(spark: SparkSession) -> DataFrame:
    """(member_id, recipient): each member's own LHJ recipient id, from gold.member.lhj.

    An LHJ feed counts a member only in their own jurisdiction, so consent is decided (and read)
    per member toward that recipient.
    """
    from pyspark.sql import functions as F

    from phmx import lakehouse
    from phmx.tables import MEMBER

    lhjs = spark.createDataFrame([(n, recipient_id(n)) for n in lhj_names()], "lhj string, recipient string")
    return (lakehouse.read(spark, MEMBER).select("member_id", "lhj").where(F.col("lhj").isNotNull())
            .join(F.broadcast(lhjs), "lhj").select("member_id", "recipient"))


def submitter_of(source: str) -> str:
    """The submitter behind a silver ``source``: a feed with its own id space appends ``:<space>``
    (a plan's FHIR resources are ``mcp_x:fhir``), and the plan is still ``mcp_x``."""
    return source.split(":", 1)[0]


def sources_of(recipient: str) -> Column:
    """Predicate on ``source``: the rows a plan recipient sent, in any of its id spaces."""
    from pyspark.sql import functions as F

    return (F.col("source") == recipient) | F.col("source").startswith(recipient + ":")


def ecm_provider_npis(spark: SparkSession) -> dict[str, list[str]]:
    """``{ECM provider recipient id: its NPIs}``: the NPIs each ``ecm_*`` submitter sends its return
    transmission, outreach and service files under (a provider that has sent none of them is not
    yet a recipient: the hub does not know which NPIs are its own)."""
    from pyspark.sql import functions as F

    from phmx import lakehouse
    from phmx.tables import ECM_CARE_PLAN, ECM_OUTREACH, ECM_SERVICE

    found: dict[str, set[str]] = {}
    for t in (ECM_CARE_PLAN, ECM_OUTREACH, ECM_SERVICE):
        if not lakehouse.exists(t):
            continue
        rows = (lakehouse.read(spark, t).where(F.col("source").startswith(ECM_PREFIX))
                .select(F.split("source", ":").getItem(0).alias("s"), "provider_npi").distinct().collect())
        for s, npi in rows:
            if s and npi:
                found.setdefault(str(s), set()).add(str(npi))
    return {r: sorted(v) for r, v in sorted(found.items())}


def ecm_provider_recipients(spark: SparkSession) -> list[str]:
    """The ECM providers publish serves (:func:`ecm_provider_npis`)."""
    return sorted(ecm_provider_npis(spark))


def ecm_assignments(spark: SparkSession) -> DataFrame:
    """(member_id, recipient, provider_npi, plan_id, authorization_start, authorization_end): every
    plan authorization of a member to an NPI of an ECM provider recipient, resolved to the member
    through gold.member_xwalk. Ended authorizations are kept (the feed picks those current on its
    date); a member never appears here for a provider the plan did not assign them to."""
    from pyspark.sql import functions as F

    from phmx import lakehouse
    from phmx.tables import ECM_ASSIGNMENT, MEMBER_XWALK

    npis = [(npi, r) for r, vs in ecm_provider_npis(spark).items() for npi in vs]
    cols = "member_id string, recipient string, provider_npi string, plan_id string, authorization_start date, "\
           "authorization_end date"
    if not npis or not lakehouse.exists(ECM_ASSIGNMENT):
        return spark.createDataFrame([], cols)
    owner = spark.createDataFrame(npis, "provider_npi string, recipient string")
    xwalk = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
    return (lakehouse.read(spark, ECM_ASSIGNMENT).join(xwalk, ["source", "source_person_id"])
            .join(F.broadcast(owner), "provider_npi")
            .select("member_id", "recipient", "provider_npi", "plan_id", "authorization_start", "authorization_end"))
