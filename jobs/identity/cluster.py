"""Clustering with guards: link edges -> members, never joining people whose strong ids conflict.

Plain connected components over-merge: A-B and B-C links put A and C together even when A and
C hold different valid CINs (B had none). So:

1. Connected components over all link edges (scipy, vectorised; a million records is a few
   hundred milliseconds). Most components hold at most one CIN, one SSN and birth dates close
   together: they are accepted as they are.
2. Components that could conflict are rebuilt edge by edge, strongest first (Kruskal order),
   keeping for each partial cluster its CINs, SSNs, birth dates and reviewer-rejected pairs.
   A union that would bring two different valid CINs (or SSNs) together is refused unless the
   edge's weight clears the link weight by the override margin; birth dates far apart (and not
   a typo of one another), two records of a source that keeps one record per person
   (``guards.unique_sources``), or a reviewer's reject are always refused.
   Forced edges (reviewer accepts, existing members in incremental mode) come first and are
   never refused.

Edges arrive here already collected (only links, a few per record), so memory stays bounded
by the number of linked records, not by the number of candidate pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from jobs.identity.config import IdentitySettings

if TYPE_CHECKING:
    from collections.abc import Iterable


#: Conflicts that strong evidence may override are the identifier conflicts (a typo in a CIN or
#: SSN makes another valid number). Birth dates far apart (a father and his namesake son share
#: everything else), two records of a source that keeps one record per person, and a
#: reviewer's reject are never overridden.
NEVER_OVERRIDDEN = frozenset({"birth_date", "given_name", "same_source", "reviewer_rejected"})


@dataclass
class GuardParams:
    """The cluster guards (from settings): ``identifiers`` names the guarded identifier columns."""

    identifiers: tuple[str, ...] = ("cin", "ssn")
    dob_days: int = 31
    #: Two given names each confirmed by two records of a cluster conflict (twins).
    given_names: bool = True
    override_weight: float = float("inf")
    unique_sources: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, s: IdentitySettings) -> GuardParams:
        return cls(identifiers=s.guarded_identifiers, dob_days=s.guard_dob_days,
                   override_weight=s.link_weight + s.override_margin_bits,
                   unique_sources=s.unique_sources)

    def is_unique_source(self, source: str | None) -> bool:
        from fnmatch import fnmatch

        return bool(source) and any(fnmatch(str(source), p) for p in self.unique_sources)


@dataclass
class ClusterResult:
    """``labels``: (rid, cluster) for every record on a kept edge; ``refused``: edges a guard
    refused, with the reason (they go to the review queue)."""

    labels: pd.DataFrame
    refused: pd.DataFrame
    stats: dict[str, int] = field(default_factory=dict)


def _ordinal(d: str) -> int | None:
    try:
        return date(int(d[:4]), int(d[4:6]), int(d[6:8])).toordinal()
    except (ValueError, TypeError):
        return None


def dates_compatible(a: str, b: str, max_days: int) -> bool:
    """Two yyyymmdd birth dates could be one person's: equal, close, day/month transposed,
    the year off by one, one digit wrong, or two adjacent digits swapped."""
    if a == b:
        return True
    oa, ob = _ordinal(a), _ordinal(b)
    if oa is not None and ob is not None and abs(oa - ob) <= max_days:
        return True
    if len(a) == len(b) == 8:
        if a[:4] == b[:4] and a[4:6] == b[6:8] and a[6:8] == b[4:6]:
            return True
        if a[4:] == b[4:] and a[:4].isdigit() and b[:4].isdigit() and abs(int(a[:4]) - int(b[:4])) == 1:
            return True  # year off by one
        diff = [i for i in range(8) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        if len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]:
            return True
    return False


class _Clusters:
    """Union-find whose roots carry the guarded identifiers seen in their cluster."""

    def __init__(self, n: int, idents: dict[str, list], dobs: list, tokens: dict[int, set[int]],
                 sources: list, names: list | None = None, token_reasons: dict[int, str] | None = None) -> None:
        #: Why token k's two records are kept apart (default: a reviewer rejected the pair).
        self.token_reasons = token_reasons or {}
        self.parent = list(range(n))
        # Confirmed given names (nickname group keys that at least two records of the
        # component carry: a typo does not repeat itself across sources).
        self.names: list[set[str]] = [{v} if v else set() for v in (names or [None] * n)]
        self.size = [1] * n
        self.ids = {name: [{v} if v else set() for v in vals] for name, vals in idents.items()}
        self.dobs = [{d} if d else set() for d in dobs]
        self.tokens = [tokens.get(i, set()) for i in range(n)]
        self.sources = [{s} if s else set() for s in sources]

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def conflict(self, a: int, b: int, g: GuardParams, explained: frozenset[str] = frozenset()) -> str | None:
        """Why clusters ``a`` and ``b`` must stay apart (None: they may join).

        ``explained``: conflicts the joining edge itself accounts for, when each side holds a
        single value: its identifier is one keystroke from the other's (a typo, seen on this
        very pair), or (``birth_date``) it agrees exactly on an identifier, which outweighs a
        replaced birth date exactly as the edge guards decided for this pair.
        """
        ta, tb = self.tokens[a], self.tokens[b]
        if ta and tb:
            hit = next((t for t in ta if -t in tb), None)
            if hit is not None:
                return self.token_reasons.get(abs(hit), "reviewer_rejected")
        if self.sources[a] and self.sources[b] and not self.sources[a].isdisjoint(self.sources[b]):
            return "same_source"
        for name, sets in self.ids.items():
            if sets[a] and sets[b] and sets[a].isdisjoint(sets[b]):
                if name in explained and len(sets[a]) == 1 and len(sets[b]) == 1:
                    continue
                return name
        if self.names[a] and self.names[b] and self.names[a].isdisjoint(self.names[b]) \
                and "given_name" not in explained:
            return "given_name"
        if "personal" in explained or ("birth_date" in explained
                                       and len(self.dobs[a]) <= 1 and len(self.dobs[b]) <= 1):
            return None
        for x in self.dobs[a]:
            for y in self.dobs[b]:
                if not dates_compatible(x, y, g.dob_days):
                    return "birth_date"
        return None

    def union(self, a: int, b: int) -> None:
        if self.size[a] < self.size[b]:
            a, b = b, a
        self.parent[b] = a
        self.size[a] += self.size[b]
        for sets in (*self.ids.values(), self.dobs, self.tokens, self.sources):
            sets[a] |= sets[b]
            sets[b] = set()
        self.names[a] |= self.names[b]
        self.names[b] = set()


def cluster(edges: pd.DataFrame, attrs: pd.DataFrame, guards: GuardParams,
            cannot: pd.DataFrame | None = None) -> ClusterResult:
    """Cluster link edges under the guards.

    ``edges``: rid_l, rid_r, weight, forced (bool), optionally ``explained`` (per edge, the
    conflicts its own evidence accounts for: see :meth:`_Clusters.conflict`) and ``compared``
    (per edge, the guarded identifiers both of its records carry: only those conflicts its
    weight may override; without the column any may). ``attrs``: rid,
    the guarded identifiers, dob_str, source for (at least) the records on the edges.
    ``cannot``: rid_l, rid_r pairs a reviewer rejected (or, with a ``reason`` column, pairs an
    edge guard keeps apart: that reason is the conflict's; never overridden).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    empty_refused = pd.DataFrame({"rid_l": pd.Series([], dtype="int64"), "rid_r": pd.Series([], dtype="int64"),
                                  "weight": pd.Series([], dtype="float64"), "reason": pd.Series([], dtype="object")})
    if edges.empty:
        return ClusterResult(pd.DataFrame({"rid": pd.Series([], dtype="int64"),
                                           "cluster": pd.Series([], dtype="int64")}), empty_refused)
    left = edges["rid_l"].to_numpy(dtype=np.int64)
    right = edges["rid_r"].to_numpy(dtype=np.int64)
    nodes, inv = np.unique(np.concatenate([left, right]), return_inverse=True)
    li, ri = inv[: len(left)], inv[len(left):]
    n = len(nodes)
    graph = coo_matrix((np.ones(len(li), dtype=np.int8), (li, ri)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)

    a = attrs.drop_duplicates("rid").set_index("rid").reindex(nodes)
    src_col = a["source"] if "source" in a.columns else pd.Series([None] * n, index=a.index)
    keep = {x: (x if guards.is_unique_source(x) else None) for x in src_col.dropna().unique()}
    uniq = src_col.map(keep)

    # Which components might conflict (vectorised): several CINs / SSNs, spread-out birth
    # dates, or a reviewer-rejected pair inside.
    idents = [c for c in guards.identifiers if c in a.columns]
    frame = pd.DataFrame({"comp": comp,
                          "dob": pd.to_datetime(a["dob_str"], format="%Y%m%d", errors="coerce").to_numpy()})
    for k, c in enumerate(idents):
        frame[f"id{k}"] = a[c].to_numpy()
    frame["usrc"] = uniq.to_numpy()
    per = frame.groupby("comp").agg(dmin=("dob", "min"), dmax=("dob", "max"), ndob=("dob", "nunique"),
                                    nusrc=("usrc", "count"), dusrc=("usrc", "nunique"),
                                    **{f"n_id{k}": (f"id{k}", "nunique") for k in range(len(idents))})
    spread = (per["dmax"] - per["dmin"]).dt.days.fillna(0)
    risky = ((per["ndob"] > 1) & (spread > guards.dob_days)) | (per["nusrc"] > per["dusrc"])
    if guards.given_names and "gn_key" in a.columns:
        # Two different given names each confirmed by two records: twins with similar names
        # (Jose / Jorge), chained through a weak spelling similarity.
        named = pd.DataFrame({"comp": comp, "gn": a["gn_key"].to_numpy()})
        repeats = named.groupby(["comp", "gn"])["gn"].transform("size").fillna(0).to_numpy()
        confirmed_name = np.where(repeats >= 2, named["gn"].to_numpy(dtype=object),
                                  np.full(len(named), None, dtype=object))
        per_comp = pd.DataFrame({"comp": comp, "gn": confirmed_name}).dropna().groupby("comp")["gn"].nunique()
        risky = risky | per_comp.reindex(per.index, fill_value=0).gt(1)
    else:
        confirmed_name = np.full(n, None, dtype=object)
    for k in range(len(idents)):
        risky = risky | (per[f"n_id{k}"] > 1)
    tokens: dict[int, set[int]] = {}
    token_reasons: dict[int, str] = {}
    never = set(NEVER_OVERRIDDEN)
    if cannot is not None and not cannot.empty:
        if "reason" in cannot.columns:
            reasons = cannot["reason"].where(cannot["reason"].notna(), "reviewer_rejected").tolist()
            token_reasons = {k: str(r) for k, r in enumerate(reasons, start=1) if r != "reviewer_rejected"}
            never |= set(token_reasons.values())
        pos = pd.Series(np.arange(n), index=nodes)
        cl = pos.reindex(cannot["rid_l"].to_numpy()).to_numpy()
        cr = pos.reindex(cannot["rid_r"].to_numpy()).to_numpy()
        for k, (x, y) in enumerate(zip(cl, cr, strict=True), start=1):
            if np.isnan(x) or np.isnan(y):
                continue
            x, y = int(x), int(y)
            if comp[x] == comp[y]:
                risky.loc[comp[x]] = True
            tokens.setdefault(x, set()).add(k)
            tokens.setdefault(y, set()).add(-k)
    risky_comps = set(per.index[risky.to_numpy()].tolist())

    labels = comp.copy()
    refused_rows: list[tuple[int, int, float, str]] = []
    overrides = 0
    if risky_comps:
        # Rebuild only the risky components, with local indices.
        risky_nodes = np.flatnonzero(np.isin(comp, list(risky_comps)))
        local = np.full(n, -1, dtype=np.int64)
        local[risky_nodes] = np.arange(len(risky_nodes))
        mask = local[li] >= 0
        sub = pd.DataFrame({"l": local[li[mask]], "r": local[ri[mask]], "w": edges["weight"].to_numpy()[mask],
                            "f": edges["forced"].to_numpy(dtype=bool)[mask],
                            "a": left[mask], "b": right[mask],
                            "e": (edges["explained"].to_numpy(dtype=object)[mask] if "explained" in edges.columns
                                  else np.full(int(mask.sum()), frozenset(), dtype=object)),
                            "c": (edges["compared"].to_numpy(dtype=object)[mask] if "compared" in edges.columns
                                  else np.full(int(mask.sum()), None, dtype=object))})
        # Strongest first; ties broken by the record ids, so the order never depends on how
        # the engine returned the rows.
        sub = sub.sort_values(["f", "w", "a", "b"], ascending=[False, False, True, True], kind="mergesort")
        sub = sub[["l", "r", "w", "f", "e", "c"]]

        def vals(col: pd.Series) -> list:
            arr = col.to_numpy(dtype=object)[risky_nodes]
            return [None if (x is None or (isinstance(x, float) and np.isnan(x))) else x for x in arr]

        uf = _Clusters(len(risky_nodes), {c: vals(a[c]) for c in idents}, vals(a["dob_str"]),
                       {int(local[k]): v for k, v in tokens.items() if local[k] >= 0}, vals(uniq),
                       names=list(confirmed_name[risky_nodes]), token_reasons=token_reasons)
        for x, y, w, forced, explained, compared in sub.itertuples(index=False):
            rx, ry = uf.find(int(x)), uf.find(int(y))
            if rx == ry:
                continue
            if not forced:
                reason = uf.conflict(rx, ry, guards, explained if isinstance(explained, frozenset) else frozenset())
                if reason is not None:
                    # Only an edge that weighed the conflicting identifier itself may override
                    # it: a record without that number (a registry or dental record) bridging
                    # two clusters with different CINs never compared them, and its weight
                    # says nothing about whether they are one person.
                    if reason not in never and w >= guards.override_weight \
                            and (compared is None or reason in compared):
                        overrides += 1
                    else:
                        refused_rows.append((int(nodes[risky_nodes[x]]), int(nodes[risky_nodes[y]]), float(w),
                                             reason))
                        continue
            uf.union(rx, ry)
        base = comp.max() + 1
        for j, i in enumerate(risky_nodes):
            labels[i] = base + uf.find(j)
    # Label each cluster by its smallest record id (deterministic).
    lab = pd.DataFrame({"rid": nodes, "label": labels})
    lab["cluster"] = lab.groupby("label")["rid"].transform("min")
    refused = pd.DataFrame(refused_rows, columns=["rid_l", "rid_r", "weight", "reason"]) if refused_rows else empty_refused
    stats = {"linked_records": int(n), "components": int(comp.max() + 1), "risky_components": len(risky_comps),
             "refused_edges": len(refused_rows), "guard_overrides": overrides,
             "clusters": int(lab["cluster"].nunique())}
    return ClusterResult(lab[["rid", "cluster"]], refused, stats)


def edge_guard_reasons(edges: pd.DataFrame, settings: IdentitySettings) -> pd.Series:
    """For each edge, the name of the first edge guard that fires (else None)."""
    reasons = pd.Series([None] * len(edges), index=edges.index, dtype="object")
    for guard in settings.edge_guards:
        fire = np.ones(len(edges), dtype=bool)
        for cname, labels in guard.when:
            fire &= level_mask(edges, settings, cname, labels)
        for cname, labels in guard.unless:
            fire &= ~level_mask(edges, settings, cname, labels)
        reasons = reasons.where(~(fire & reasons.isna().to_numpy()), guard.name)
    return reasons


def compared_identifiers(edges: pd.DataFrame, settings: IdentitySettings) -> pd.Series:
    """Per edge, the guarded identifiers both of its records carry (the edge's weight has
    weighed their agreement or disagreement): the identifier conflicts it may override."""
    names = [n for n in settings.guarded_identifiers if f"g_{n}" in edges.columns]
    if not names:
        return pd.Series([frozenset()] * len(edges), index=edges.index, dtype="object")
    present = {n: (edges[f"g_{n}"].to_numpy() != -1) for n in names}
    return pd.Series([frozenset(n for n in names if present[n][i]) for i in range(len(edges))],
                     index=edges.index, dtype="object")


def explained_conflicts(edges: pd.DataFrame, settings: IdentitySettings) -> pd.Series:
    """Per edge, the cluster conflicts its own evidence accounts for: a guarded identifier
    whose two values are one keystroke apart on this pair (``one_typo``/``transposition``),
    and ``birth_date`` when an identifier agrees exactly and the given names agree (the edge
    guards let such a pair link despite different birth dates: a replaced or mistyped date;
    a parent's number on a child's record has neither the name nor the date)."""
    parts: list[np.ndarray] = []
    names: list[str] = []
    for name in settings.guarded_identifiers:
        if f"g_{name}" not in edges.columns:
            continue
        parts.append(level_mask(edges, settings, name, ("one_typo", "transposition")))
        names.append(name)
    named = level_mask(edges, settings, "given_name", tuple(
        lv.label for lv in settings.comparison("given_name").levels if lv.kind not in ("initial", "else"))) \
        if "g_given_name" in edges.columns else np.zeros(len(edges), dtype=bool)
    exact_id = level_mask(edges, settings, "any_identifier", ("exact",))
    # (within a keying error: see the household guards in settings.yaml)
    personal = level_mask(edges, settings, "personal_identifier", ("exact", "one_typo", "transposition"))
    parts.append((exact_id & named) | personal)
    names.append("birth_date")
    # Two confirmed given names may join through an edge whose own names are related (a
    # nickname, a part of a compound name, an alias) or that agrees exactly on an identifier.
    related = level_mask(edges, settings, "given_name", tuple(
        lv.label for lv in settings.comparison("given_name").levels if lv.kind in ("exact", "token_overlap",
                                                                                   "cross_equal"))) \
        if "g_given_name" in edges.columns else np.zeros(len(edges), dtype=bool)
    parts.append(exact_id | related)
    names.append("given_name")
    # A personal identifier (never on a relative's record) agreeing exactly: the two records are
    # one holder's, whatever birth dates the clusters around them carry (FEBRL 3's duplicates
    # replace a birth date in one copy of several).
    parts.append(personal)
    names.append("personal")
    # A bit per conflict kind, then one frozenset per distinct code (a handful), vectorised.
    code = np.zeros(len(edges), dtype=np.int64)
    for bit, hit in enumerate(parts):
        code |= hit.astype(np.int64) << bit
    sets = {int(c): frozenset(n for bit, n in enumerate(names) if (int(c) >> bit) & 1) for c in np.unique(code)}
    return pd.Series([sets[int(c)] for c in code], index=edges.index, dtype="object")


def level_mask(edges: pd.DataFrame, settings: IdentitySettings, cname: str, labels: Iterable[str]) -> np.ndarray:
    """Edges whose comparison ``cname`` reached one of ``labels`` (``any_identifier``: any
    identifier did)."""
    out = np.zeros(len(edges), dtype=bool)
    for name, gammas in settings.gammas(cname, tuple(labels)):
        if f"g_{name}" in edges.columns:
            out |= edges[f"g_{name}"].isin(gammas).to_numpy()
    return out
