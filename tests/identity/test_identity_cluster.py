"""Clustering guards: conflicting strong identifiers never end up in one member."""

from __future__ import annotations

import pandas as pd

from jobs.identity.cluster import GuardParams, cluster, dates_compatible


def _edges(rows):
    return pd.DataFrame(rows, columns=["rid_l", "rid_r", "weight"]).assign(forced=False)


def _attrs(rows):
    return pd.DataFrame(rows, columns=["rid", "cin", "ssn", "dob_str"])


def _members(result):
    lab = dict(zip(result.labels["rid"], result.labels["cluster"], strict=True))
    return lab


def test_transitive_chain_cannot_join_two_cins():
    # 1 and 3 hold different valid CINs; 2 (no CIN) links strongly to both.
    edges = _edges([(1, 2, 30.0), (2, 3, 25.0)])
    attrs = _attrs([(1, "91111111A", None, "19900102"), (2, None, None, "19900102"),
                    (3, "92222222B", None, "19900102")])
    res = cluster(edges, attrs, GuardParams(override_weight=40.0))
    lab = _members(res)
    assert lab[1] == lab[2] != lab[3]  # the stronger edge wins, the other is refused
    assert res.refused.iloc[0]["reason"] == "cin"


def test_override_margin_lets_overwhelming_evidence_through():
    edges = _edges([(1, 2, 50.0)])
    attrs = _attrs([(1, "91111111A", None, "19900102"), (2, "91111112A", None, "19900102")])
    lab = _members(cluster(edges, attrs, GuardParams(override_weight=40.0)))
    assert lab[1] == lab[2]
    lab = _members(cluster(edges, attrs, GuardParams(override_weight=60.0)))
    assert lab[1] != lab[2]



def test_only_an_edge_that_compared_the_numbers_overrides_their_conflict():
    # 1 and 3 hold different CINs; 2 (a dental record, no CIN) links to both with weights over
    # the override. The 2-3 edge never weighed the CINs, so it cannot override their conflict;
    # a direct 1-3 edge that did (a CIN typo with everything else agreeing) can.
    attrs = _attrs([(1, "91111111A", None, "19900102"), (2, None, None, "19900102"),
                    (3, "95555555B", None, "19900102")])
    bridged = _edges([(1, 2, 60.0), (2, 3, 55.0)]).assign(compared=[frozenset(), frozenset()])
    lab = _members(cluster(bridged, attrs, GuardParams(override_weight=40.0)))
    assert lab[1] == lab[2] and lab[3] != lab[1]
    direct = _edges([(1, 3, 60.0)]).assign(compared=[frozenset({"cin"})])
    lab = _members(cluster(direct, attrs, GuardParams(override_weight=40.0)))
    assert lab[1] == lab[3]

def test_ssn_and_far_birth_dates_conflict_but_typos_do_not():
    edges = _edges([(1, 2, 20.0), (3, 4, 20.0), (5, 6, 20.0), (7, 8, 20.0)])
    attrs = _attrs([
        (1, None, "123456780", "19900102"), (2, None, "223456780", "19900102"),  # two SSNs
        (3, None, None, "19900102"), (4, None, None, "19620517"),  # father and son
        (5, None, None, "19900102"), (6, None, None, "19900201"),  # day/month transposed
        (7, None, None, "19851010"), (8, None, None, "19581010"),  # year digits swapped
    ])
    lab = _members(cluster(edges, attrs, GuardParams(override_weight=99.0)))
    assert lab[1] != lab[2] and lab[3] != lab[4]
    assert lab[5] == lab[6] and lab[7] == lab[8]


def test_forced_edges_and_reviewer_rejections():
    edges = pd.DataFrame([(1, 2, float("inf"), True), (2, 3, 20.0, False), (3, 4, 20.0, False)],
                         columns=["rid_l", "rid_r", "weight", "forced"])
    attrs = _attrs([(1, "91111111A", None, None), (2, "92222222B", None, None), (3, None, None, None),
                    (4, None, None, None)])
    cannot = pd.DataFrame([(1, 4)], columns=["rid_l", "rid_r"])
    res = cluster(edges, attrs, GuardParams(override_weight=99.0), cannot)
    lab = _members(res)
    assert lab[1] == lab[2] == lab[3]  # forced despite two CINs
    assert lab[4] != lab[1]  # a reviewer said 1 and 4 are different people
    assert "reviewer_rejected" in set(res.refused["reason"])


def test_dates_compatible():
    assert dates_compatible("19900102", "19900102", 31)
    assert dates_compatible("19900102", "19900120", 31)
    assert dates_compatible("19900102", "19900201", 0)  # transposed
    assert dates_compatible("19900102", "19900103", 0)  # one digit
    assert not dates_compatible("19900102", "19910305", 31)


def test_two_confirmed_given_names_stay_apart_unless_the_edge_relates_them():
    # Twins: JOSE on records 1 and 2, JORGE on 3 and 4, all linked to each other by strong
    # edges (same family, birth date, address); the cross edges are weak spelling matches.
    edges = _edges([(1, 2, 30.0), (3, 4, 30.0), (1, 3, 35.0), (2, 4, 20.0)])
    attrs = _attrs([(i, None, None, "20240828") for i in (1, 2, 3, 4)]).assign(
        gn_key=["JOSE", "JOSE", "JORGE", "JORGE"], source=["a", "b", "a", "b"])
    lab = _members(cluster(edges, attrs, GuardParams(override_weight=40.0)))
    assert lab[1] == lab[2] != lab[3] == lab[4]
    # A one-off misspelling (JORGE on one record only) is not confirmed: it links.
    attrs2 = attrs.assign(gn_key=["JOSE", "JOSE", "JORGE", "JOSE"])
    lab = _members(cluster(edges, attrs2, GuardParams(override_weight=40.0)))
    assert len({lab[i] for i in (1, 2, 3, 4)}) == 1
    # An edge whose own evidence relates the names (an exact identifier, a nickname) joins them.
    explained = edges.assign(explained=[frozenset(), frozenset(), frozenset({"given_name"}), frozenset()])
    lab = _members(cluster(explained, attrs, GuardParams(override_weight=40.0)))
    assert len({lab[i] for i in (1, 2, 3, 4)}) == 1


def test_a_pair_an_apart_guard_refused_is_not_bridged_by_a_third_record():
    # The demo's shape: a registry record (3) an edge guard keeps apart from a plan member (1),
    # and the member's dental record (2, a ZIP and no street) linked to both. The plan-dental
    # edge is the stronger: the registry record stays alone, refused with the guard's name.
    edges = _edges([(1, 2, 30.0), (2, 3, 20.0)])
    attrs = _attrs([(1, "91111111A", None, "19770918"), (2, "91111111A", None, "19770918"),
                    (3, None, None, "19770918")])
    apart = pd.DataFrame({"rid_l": [1], "rid_r": [3], "reason": ["lookalike_elsewhere"]})
    res = cluster(edges, attrs, GuardParams(override_weight=5.0), apart)
    lab = _members(res)
    assert lab[1] == lab[2] != lab[3]
    assert res.refused["reason"].tolist() == ["lookalike_elsewhere"]  # never overridden, whatever the weight
    # A reviewer's reject (no reason column) is still named as one.
    res = cluster(edges, attrs, GuardParams(override_weight=5.0), apart[["rid_l", "rid_r"]])
    assert res.refused["reason"].tolist() == ["reviewer_rejected"]
