"""Age on the anchor date, age bands, the combined race/ethnicity category, sensitivity."""

from __future__ import annotations

from datetime import date

from jobs.measures import config
from jobs.measures.strata import age_at, age_band, race_ethnicity, sensitivity_of


def test_age_band_race_ethnicity_and_sensitivity_in_one_pass(spark):
    from pyspark.sql import functions as F

    cases = [
        # birth, anchor, race, ethnicity, labels, floor -> age, band, category, sensitivity
        (date(2019, 6, 15), date(2025, 6, 15), "2106-3", "2186-5", [], "general", 6, "6-11", "White NH", "general"),
        (date(2019, 6, 16), date(2025, 6, 15), "2106-3", "2135-2", [], "mh", 5, "0-5", "Hispanic", "mh"),
        (date(2008, 2, 29), date(2025, 2, 28), "2054-5", None, ["MH"], "general", 16, "12-17", "Black NH", "mh"),
        (date(2008, 2, 29), date(2025, 3, 1), "7", "5", ["SUD"], "mh", 17, "12-17", "Asian NH", "sud"),
        (date(2005, 1, 1), date(2025, 12, 31), "H", "1", ["42CFRPart2"], "general", 20, "18-20", "Hispanic", "sud"),
        (date(2004, 12, 31), date(2025, 12, 31), "2131-1", "2186-5", [], "general", 21, "21-44", "Multiracial/Other", "general"),
        (date(1960, 1, 1), date(2025, 1, 1), "2106-3,2054-5", "2186-5", [], "general", 65, "65+", "Multiracial/Other", "general"),
        (date(1980, 5, 5), date(2025, 5, 4), None, "2186-5", [], "general", 44, "21-44", "Unknown", "general"),
        (date(1980, 5, 5), date(2025, 5, 5), "99900", "99900", ["PSY"], "general", 45, "45-64", "Unknown", "mh"),
        (date(1980, 5, 5), date(2025, 5, 5), "E", None, [], "general", 45, "45-64", "NHPI NH", "general"),
        (date(1980, 5, 5), date(2025, 5, 5), "3", "5", [], "general", 45, "45-64", "AIAN NH", "general"),
    ]
    df = spark.createDataFrame([c[:6] for c in cases], "b date, a date, race string, eth string, "
                                                       "labels array<string>, floor string")
    cfg = config.load()
    age = age_at("b", "a")
    out = df.select(age.alias("age"), age_band(age).alias("band"),
                    race_ethnicity(cfg.race, F.col("race"), F.col("eth")).alias("re"),
                    sensitivity_of(F.col("labels"), F.col("floor")).alias("s")).collect()
    assert [tuple(r) for r in out] == [c[6:] for c in cases]
