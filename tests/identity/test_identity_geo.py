"""The LHJ table: 58 counties plus the three city health departments."""

from __future__ import annotations

from jobs.identity import geo


def test_lhj_table_has_every_county_and_the_three_cities():
    table = geo.load_lhj()
    fips = sorted(table["counties"])
    assert len(fips) == 58
    assert fips == [f"06{n:03d}" for n in range(1, 116, 2)]  # odd codes, alphabetical order
    assert set(table["cities"]) == {"Berkeley", "Long Beach", "Pasadena"}


def test_lhj_for_residence():
    assert geo.lhj_for("06001", "94703") == "Berkeley"
    assert geo.lhj_for("06001", "94601") == "Alameda"
    assert geo.lhj_for("06037", "90802") == "Long Beach"
    assert geo.lhj_for("06037", "91101") == "Pasadena"
    assert geo.lhj_for("06037", "90011") == "Los Angeles"
    assert geo.lhj_for(None, None) is None
