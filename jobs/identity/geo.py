"""Where a member lives, as a local health jurisdiction (LHJ): county, or one of three cities.

California has 61 LHJs: the 58 counties and the city health departments of Berkeley, Long Beach
and Pasadena. The table is data (``mappings/geo/lhj.yaml``) so it can be versioned and reviewed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from phmx.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
LHJ_FILE = MAPPINGS / "geo" / "lhj.yaml"


@lru_cache(maxsize=4)
def load_lhj(path: str = str(LHJ_FILE)) -> dict[str, Any]:
    """The LHJ table: ``{"counties": {fips: name}, "cities": {name: {county_fips, zips}}}``."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read LHJ table {path}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("counties"), dict):
        raise ConfigError(f"{path}: key 'counties' must map county FIPS to names")
    cities = data.get("cities") or {}
    for name, spec in cities.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("zips"), list):
            raise ConfigError(f"{path}: cities.{name}.zips must be a list of ZIP codes")
    return {"counties": {str(k): str(v) for k, v in data["counties"].items()}, "cities": cities}


def lhj_for(county_fips: str | None, zip5: str | None) -> str | None:
    """Python twin of :func:`lhj_column` (for the CLI and tests)."""
    table = load_lhj()
    for name, spec in table["cities"].items():
        if zip5 and zip5 in {str(z) for z in spec["zips"]}:
            return str(name)
    return table["counties"].get(county_fips or "")


def city_zip_frame(spark: SparkSession) -> DataFrame:
    """(zip, city_lhj) rows for the three city LHJs, to join on the member's ZIP."""
    rows = [(str(z), str(name)) for name, spec in load_lhj()["cities"].items() for z in spec["zips"]]
    return spark.createDataFrame(rows, "lhj_zip string, city_lhj string")


def county_name_column(fips_col: Column) -> Column:
    """A column expression mapping a county FIPS code to its county name (null if unknown)."""
    from pyspark.sql import functions as F

    expr: Column | None = None
    for fips, name in load_lhj()["counties"].items():
        expr = (F.when(fips_col == fips, F.lit(name)) if expr is None
                else expr.when(fips_col == fips, F.lit(name)))
    if expr is None:
        return F.lit(None).cast("string")
    return expr.otherwise(F.lit(None).cast("string"))


def add_lhj(spark: SparkSession, df: DataFrame, *, zip_col: str = "zip",
            fips_col: str = "county_fips", out: str = "lhj") -> DataFrame:
    """Add ``out``: the city LHJ when the ZIP is in one, else the county name from the FIPS."""
    from pyspark.sql import functions as F

    cities = F.broadcast(city_zip_frame(spark))
    joined = df.join(cities, F.col(zip_col) == F.col("lhj_zip"), "left")
    return joined.withColumn(out, F.coalesce(F.col("city_lhj"), county_name_column(F.col(fips_col)))) \
        .drop("lhj_zip", "city_lhj")
