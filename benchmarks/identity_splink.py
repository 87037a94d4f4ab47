"""Splink 5 (DuckDB backend) on the same person records, for the identity benchmark.

A competent, conventional Splink model, built the way Splink's own tutorials build one:
light cleaning in pandas (upper case, accents folded, digits only for identifiers), name
comparisons with Jaro-Winkler bands and term-frequency adjustment, a date-of-birth comparison,
Levenshtein on CIN and SSN, exact phone, ZIP and a fuzzy address; the probability that two
random records match from deterministic rules; u from random sampling; m by EM on two
blocking rules; the same prediction blocking rules as phmx; connected components at the
threshold. Splink is a benchmark-only dependency (``pip install splink==5.0.0``).
"""

from __future__ import annotations

import time
import unicodedata
from typing import Any

import pandas as pd


def _fold(s: pd.Series) -> pd.Series:
    def one(x: Any) -> Any:
        if not isinstance(x, str):
            return None
        x = unicodedata.normalize("NFKD", x).encode("ascii", "ignore").decode().upper()
        x = "".join(ch if ch.isalpha() or ch == " " else " " for ch in x)
        x = " ".join(x.split())
        return x or None

    return s.map(one)


def _digits(s: pd.Series, n: int) -> pd.Series:
    d = s.astype("string").str.replace(r"\D", "", regex=True)
    return d.where(d.str.len() == n).astype(object).where(lambda v: v.notna(), None)


def prepare(person: pd.DataFrame) -> pd.DataFrame:
    """Light, conventional cleaning (what a Splink user would do before linking)."""
    df = pd.DataFrame({"unique_id": person["source"] + "|" + person["source_person_id"]})
    df["given_name"] = _fold(person["given_name"]).str.split(" ").str[0]
    df["family_name"] = _fold(person["family_name"]).str.replace(" ", "", regex=False)
    df["birth_date"] = pd.to_datetime(person["birth_date"], errors="coerce").dt.strftime("%Y-%m-%d")
    df["sex"] = person["sex"].where(person["sex"].isin(["M", "F"]), None)
    cin = person["cin"].astype("string").str.upper().str.replace(r"[^0-9A-Z]", "", regex=True)
    df["cin"] = cin.where(cin.str.match(r"^9\d{7}[A-Z]$", na=False)).astype(object)
    df["ssn"] = _digits(person["ssn"], 9)
    phone = person["phone"].astype("string").str.replace(r"\D", "", regex=True).str[-10:]
    df["phone"] = phone.where(phone.str.len() == 10).astype(object)
    df["zip"] = person["zip"].astype("string").str[:5].astype(object)
    df["address_line"] = _fold(person["address_line"])
    df = df.astype(object).where(df.notna(), None)
    return df


def train(df: pd.DataFrame, variant: str = "standard") -> Any:
    """A trained Splink linker on cleaned records (see :func:`prepare`).

    ``standard``: every field. ``no_household``: without phone and address, which household
    members share (a common way to stop households from merging under connected components).
    """
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("family_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.ExactMatch("sex"),
            cl.LevenshteinAtThresholds("cin", [1, 2]),
            cl.LevenshteinAtThresholds("ssn", [1, 2]),
            *([] if variant == "no_household" else [cl.ExactMatch("phone")]),
            cl.ExactMatch("zip"),
            *([] if variant == "no_household" else [cl.LevenshteinAtThresholds("address_line", [1, 3])]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("cin"),
            block_on("ssn"),
            block_on("birth_date", "family_name"),
            block_on("birth_date", "given_name"),
            block_on("phone"),
            block_on("zip", "substr(given_name, 1, 1)", "substr(birth_date, 1, 4)"),
            block_on("given_name", "family_name", "substr(birth_date, 1, 4)"),
            block_on("given_name", "family_name", "substr(birth_date, 6, 5)"),
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI()
    sdf = db_api.register(df)
    linker = Linker(sdf, settings, log_level="WARNING")
    linker.training.estimate_probability_two_random_records_match(
        [block_on("cin"), block_on("given_name", "family_name", "birth_date")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("given_name", "family_name"))
    return linker


def run(person: pd.DataFrame, thresholds: tuple[float, ...] = (0.9, 0.95, 0.99),
        variant: str = "standard") -> dict[str, Any]:
    """Train and predict; return cluster assignments per threshold and the timings."""
    t0 = time.perf_counter()
    linker = train(prepare(person), variant)
    t_train = time.perf_counter()
    pred = linker.inference.predict(threshold_match_probability=min(thresholds))
    t_pred = time.perf_counter()
    out: dict[str, Any] = {"clusters": {}}
    first = True
    for th in thresholds:
        t = time.perf_counter()
        cl_df = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, threshold_match_probability=th)
        clusters = cl_df.as_pandas_dataframe()[["unique_id", "cluster_id"]]
        if first:
            out["cluster_seconds"] = time.perf_counter() - t
            first = False
        out["clusters"][th] = clusters
    out["seconds"] = round(t_pred - t0 + out["cluster_seconds"], 2)
    out["train_seconds"] = round(t_train - t0, 2)
    out["predict_seconds"] = round(t_pred - t_train, 2)
    return out
