"""Turn one chunk of true people and their clinical events into each submitter's rows.

Why here and not in the writers: this is where a source's *view* of a person meets the events
it would know about (a plan sees its members' claims, a county only its residents' services).
Rows come out as lists in the layout's field order; the writers only serialise.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass

from phmx.synth import reference as ref
from phmx.synth.clinical import Clinical, ClinicalBuilder
from phmx.synth.config import SynthConfig
from phmx.synth.costs import line_paid
from phmx.synth.households import Person, PopulationBuilder, assign_conditions, make_lookalikes, plan_id
from phmx.synth.identifiers import Scrambler, rng_for
from phmx.synth.layouts import LAYOUTS
from phmx.synth.noise import SourceView, upper_ascii
from phmx.synth.world import World
from phmx.synth.writers.delimited import format_row

Key = tuple[str, str, str]  # submitter, feed, period


def ymd(d: dt.date) -> str:
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def iso(d: dt.date | None) -> str:
    return d.isoformat() if d else ""


def county_submitter(fips: str) -> str:
    return f"county_{fips}_bh"


def _csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


@dataclass
class ChunkPayload:
    """A chunk serialised: submission text per (submitter, feed, period) and ground-truth text.

    Plain strings and ints, so a worker process can hand it back cheaply.
    """

    files: dict[Key, tuple[str, int]]
    person_map: str
    people: str
    index_events: str
    people_count: int


class ChunkRows:
    """Rows of one chunk, formatted to lines as they come so a chunk's memory stays small."""

    def __init__(self) -> None:
        self.files: dict[Key, list] = {}  # key -> [lines, delimiter]
        self.person_map: list[list[str]] = []
        self.people: list[list[str]] = []
        self.index_events: list[list[str]] = []

    def add(self, key: Key, row: list[str]) -> None:
        entry = self.files.get(key)
        if entry is None:
            entry = self.files[key] = [[], LAYOUTS[key[1]].delimiter]
        entry[0].append(format_row(row, entry[1]))

    def add_line(self, key: Key, line: str) -> None:
        """A line already formatted by ``format_row`` (for rows that repeat with small changes)."""
        entry = self.files.get(key)
        if entry is None:
            entry = self.files[key] = [[], LAYOUTS[key[1]].delimiter]
        entry[0].append(line)

    def payload(self) -> ChunkPayload:
        return ChunkPayload({k: ("".join(v[0]), len(v[0])) for k, v in sorted(self.files.items())},
                            _csv_text(self.person_map), _csv_text(self.people), _csv_text(self.index_events),
                            len(self.people))


PEOPLE_FIELDS = ("person_id", "household_id", "twin_of", "lookalike_of", "given_name", "middle_name", "family_name", "family_name_new",
                 "sex", "birth_date", "death_date", "cin", "ssn", "county_fips",
                 "moved_county", "name_changed", "homeless", "smi", "mh", "sud", "chronic", "enrolled_months",
                 "plans", "county_mh_client", "county_sud_client")
PERSON_MAP_FIELDS = ("submitter", "feed", "source_person_id", "person_id")
INDEX_FIELDS = ("person_id", "event_type", "event_date", "discharge_date", "age", "followup_planned",
                "followup_date", "followup_source")


class ChunkRenderer:
    """Generates one chunk end to end with RNGs derived from (seed, chunk index)."""

    def __init__(self, world: World, cfg: SynthConfig, chunk: int, first_idx: int, size: int,
                 variants: dict[str, tuple[str, ...]] | None = None) -> None:
        self.w, self.cfg, self.chunk = world, cfg, chunk
        self.first_idx, self.size = first_idx, size
        self.variants = variants or {}
        self.rng = rng_for(world.seed, "chunk", chunk)
        self.out = ChunkRows()
        self.seq: dict[str, int] = defaultdict(int)
        self.seen: set[tuple[str, str, str]] = set()
        self.scr: dict[str, Scrambler] = {}

    # ------------------------------------------------------------------ helpers
    def scrambler(self, salt: str, digits: int) -> Scrambler:
        s = self.scr.get(salt)
        if s is None:
            s = self.scr[salt] = Scrambler(self.w.seed, salt, digits)
        return s

    def next_id(self, prefix: str, width: int = 7) -> str:
        self.seq[prefix] += 1
        return f"{prefix}{self.chunk:05d}{self.seq[prefix]:0{width}d}"

    def emit(self, submitter: str, feed: str, period: str, row: list[str], sid: str, p: Person) -> None:
        self.out.add((submitter, feed, period), row)
        self.register(submitter, feed, sid, p)

    def register(self, submitter: str, feed: str, sid: str, p: Person) -> None:
        """Record (submitter, feed, source id) -> person once, for the ground truth map."""
        k = (submitter, feed, sid)
        if k not in self.seen:
            self.seen.add(k)
            self.out.person_map.append([submitter, feed, sid, p.pid])
            for variant in self.variants.get(feed, ()):
                self.out.person_map.append([submitter, variant, sid, p.pid])

    def period(self, d: dt.date) -> str | None:
        m = self.w.month_of(d)
        return self.w.months[m].period if 0 <= m < len(self.w.months) else None

    # ------------------------------------------------------------------ main
    def run(self) -> ChunkRows:
        cfg, r = self.cfg, self.rng
        builder = PopulationBuilder(self.w, cfg.population, r)
        people: list[Person] = []
        hh = 0
        while len(people) < self.size:
            hh_id = f"H{self.chunk:05d}{hh:06d}"
            people += builder.household(hh_id, self.first_idx + len(people), self.size - len(people))
            hh += 1
        make_lookalikes(people, r, cfg.population.lookalike_rate)
        clin = ClinicalBuilder(self.w, cfg.clinical, r)
        for p in people:
            assign_conditions(p, r, cfg.population, self.w.start)
            cl = clin.build(p)
            views: dict[str, SourceView] = {}
            self.enrollment(p, views)
            self.claims(p, cl, views)
            self.pharmacy(p, cl, views)
            self.county(p, cl)
            self.dental(p, cl)
            self.immunizations(p, cl)
            self.truth(p, cl)
        return self.out

    def view(self, views: dict[str, SourceView], key: str, kind: str, p: Person) -> SourceView:
        v = views.get(key)
        if v is None:
            v = views[key] = SourceView(p, kind, self.rng, self.cfg.noise)
        return v

    # ------------------------------------------------------------------ plans
    def local_plan_id(self, plan: str, p: Person) -> str:
        return ref.PLAN_LOCAL_PREFIX[plan] + self.scrambler(f"plan:{plan}", 9)(p.idx)

    def enrollment(self, p: Person, views: dict[str, SourceView]) -> None:
        months = self.w.months
        race = ref.CDC_RACE[p.group]
        race_code = race[int(p.race_pick * len(race))] if p.race_pick < 0.92 else ""
        eth = "" if p.race_pick > 0.95 else ref.CDC_HISPANIC if p.group == "hispanic" else ref.CDC_NOT_HISPANIC
        langs = ref.LANGUAGES[p.group]
        lang = langs[int(p.race_pick * len(langs))]
        for plan in sorted({x for x in p.plan_months if x}):
            v = self.view(views, plan, "plan", p)
            lid = self.local_plan_id(plan, p)
            pid_code = plan_id(plan)
            cin, ssn, dob, sex = v.cin, v.ssn, ymd(v.dob), v.sex
            span_start = ""
            prev_state: tuple | None = None
            bases: dict[tuple, str] = {}
            add = self.out.add_line
            # most people have no life event in the window: one state for every month
            steady = len(p.family_hist) == 1 and len(p.addr_hist) == 1 and len(p.phone_hist) == 1
            constant = (v.names(0), v.address(0), v.phone(0)) if steady else None
            for m, month in enumerate(months):
                cur = p.plan_months[m] == plan
                prev = m > 0 and p.plan_months[m - 1] == plan
                if not cur and not prev:
                    continue
                mm = m if cur else m - 1
                if constant is not None:
                    state = constant
                else:
                    state = (v.names(mm), v.address(mm), v.phone(mm))
                names, addr, phone = state
                base = bases.get(state)
                if base is None:
                    given, middle, family = names
                    line, city, zip5, fips = addr
                    # the first 20 fields as a formatted prefix (ending with the delimiter)
                    base = bases[state] = format_row(
                        [lid, cin, ssn, upper_ascii(given), upper_ascii(middle), upper_ascii(family), dob, sex, line, city,
                         "CA", zip5, fips, phone, p.email, lang, race_code, eth, pid_code, p.aid, ""], "|")[:-1]
                if cur:
                    if m == 0:
                        span_start = ymd(p.cov_start)
                    elif not prev:
                        span_start = ymd(max(month.first, p.dob))
                    if (m > 0 and not prev) or (m == 0 and p.cov_start >= month.first):
                        maint = "021"
                    elif prev_state is not None and state != prev_state:
                        maint = "001"
                    else:
                        maint = "030"
                    prev_state = state
                    add((plan, "enrollment", month.period), f"{base}{span_start}||{maint}\n")
                else:
                    end = months[m - 1].last if p.dod is None or p.dod > months[m - 1].last else p.dod
                    add((plan, "enrollment", month.period), f"{base}{span_start}|{ymd(end)}|024\n")
                    prev_state = None
            self.register(plan, "enrollment", lid, p)

    def plan_on(self, p: Person, d: dt.date) -> str | None:
        m = self.w.month_of(d)
        return p.plan_months[m] if 0 <= m < len(p.plan_months) else None

    def claims(self, p: Person, cl: Clinical, views: dict[str, SourceView]) -> None:
        r = self.rng
        for c in cl.claims:
            plan = self.plan_on(p, c.start)
            period = self.period(c.end)
            if plan is None or period is None:
                continue
            v = self.view(views, plan, "plan", p)
            lid = self.local_plan_id(plan, p)
            prov = self.w.providers[p.addr_at(self.w.month_of(c.start))[3]]
            npi = r.choice(prov.hospital if c.kind in ("ed", "ip") else prov.bh if c.kind in ("mh_office", "sud_office") else prov.pcp)
            dx = list(c.dx[:4]) + [""] * (4 - len(c.dx[:4]))
            admit = iso(c.start) if c.kind == "ip" else ""
            disch = iso(c.end) if c.kind == "ip" else ""
            prefix = ref.PLAN_LOCAL_PREFIX[plan]
            if c.institutional:
                cid = self.next_id(prefix + "I")
                for n, (rev, cpt) in enumerate(c.lines, 1):
                    paid = line_paid(c.kind, cid, n, (c.end - c.start).days)
                    self.emit(plan, "claims", period, [cid, str(n), lid, v.cin, "I", iso(c.start), iso(c.end), admit, disch,
                                                       c.pos, rev, cpt, *dx, npi, plan_id(plan), paid], lid, p)
            if not c.institutional or c.professional_too:
                cid = self.next_id(prefix + "P")
                cpts = [cpt for _rev, cpt in c.lines] if not c.institutional else \
                    [r.choice(ref.CPT_ED) if c.kind == "ed" else r.choice(ref.CPT_IP)]
                doc = r.choice(prov.pcp) if c.kind == "ip" else npi
                for n, cpt in enumerate(cpts, 1):
                    paid = line_paid(c.kind, cid, n, professional=c.institutional)
                    self.emit(plan, "claims", period, [cid, str(n), lid, v.cin, "P", iso(c.start), iso(c.end),
                                                       "", "", c.pos, "", cpt, *dx, doc, plan_id(plan), paid], lid, p)

    def pharmacy(self, p: Person, cl: Clinical, views: dict[str, SourceView]) -> None:
        r = self.rng
        for d, ndc, days, qty in cl.rx:
            plan = self.plan_on(p, d)
            period = self.period(d)
            if plan is None or period is None:
                continue
            v = self.view(views, plan, "plan", p)
            lid = self.local_plan_id(plan, p)
            prescriber = r.choice(self.w.providers[p.addr_at(self.w.month_of(d))[3]].prescriber)
            self.emit(plan, "pharmacy", period, [self.next_id("RX" + ref.PLAN_LOCAL_PREFIX[plan]), lid, v.cin, iso(d), ndc,
                                                 str(days), str(qty), prescriber, plan_id(plan)], lid, p)

    # ------------------------------------------------------------------ county behavioural health
    def _county_race(self, p: Person, caloms: bool) -> tuple[str, str]:
        races = ref.COUNTY_RACE[p.group]
        race = races[int(p.race_pick * len(races))]
        eth = ref.COUNTY_ETH_HISPANIC[int(p.race_pick * len(ref.COUNTY_ETH_HISPANIC))] if p.group == "hispanic" else ref.COUNTY_ETH_NOT
        if caloms and p.race_pick > 0.97:
            return ref.CALOMS_DECLINED, ref.CALOMS_DECLINED
        if caloms and p.race_pick > 0.955:
            return race, ref.CALOMS_UNKNOWN
        if not caloms and p.race_pick > 0.96:
            return "", ""
        return race, eth

    def county(self, p: Person, cl: Clinical) -> None:
        if not (cl.mh or cl.sud):
            return
        r, noise = self.rng, self.cfg.noise
        views: dict[str, SourceView] = {}
        mh_ids: dict[str, tuple[str, str, dt.date | None]] = {}  # fips -> (id, duplicate id, switch date)
        consent_candidates: list[tuple[str, str, str, dt.date]] = []  # program, fips, client id, date
        last_c: dict[str, tuple] = {}  # client -> demographics last sent in a C row
        c_sent: set[tuple[str, str]] = set()  # (client, period): at most one C row per client per file
        periodic_done: set[str] = set()
        for s in cl.mh:
            period = self.period(s.date)
            if period is None:
                continue
            m = self.w.month_of(s.date)
            fips = p.addr_at(m)[3]
            sub = county_submitter(fips)
            ids = mh_ids.get(fips)
            if ids is None:
                base = self.scrambler(f"mh:{fips}", 8)(p.idx)
                dup, switch = "", None
                if r.random() < noise.county_duplicate_client:
                    dup = self.scrambler(f"mh:{fips}", 8)(p.idx + 50_000_000)
                    switch = s.date + dt.timedelta(days=r.randrange(10, 200))
                ids = mh_ids[fips] = (base, dup, switch)
                consent_candidates.append(("MH", fips, base, s.date))
            duplicate = ids[2] is not None and s.date >= ids[2]
            client = ids[1] if duplicate else ids[0]
            # a re-registration is keyed again by a clerk: its own copy of the person, its own errors
            v = self.view(views, sub + "#dup" if duplicate else sub, "county", p)
            code = ref.county_code(fips)
            given, _middle, family = v.names(m)
            zip5 = v.address(m)[2]
            state = (family, zip5, v.cin)
            if last_c.get(client) != state and (client, period) not in c_sent:
                c_sent.add((client, period))
                race, eth = self._county_race(p, caloms=False)
                self.emit(sub, "mh_csi", period, ["C", code, client, v.cin, v.ssn, v.render(given), v.render(family), iso(v.dob),
                                                  v.sex, race, eth, zip5, "", "", "", "", "", "", "", "", ""], client, p)
                last_c[client] = state
            if client not in periodic_done:
                self.emit(sub, "mh_csi", period, ["P", code, client, "", "", "", "", "", "", "", "", "", iso(s.date), "", "", "",
                                                  "", "", *self._periodic(p, s.date)], client, p)
                periodic_done.add(client)
            self.emit(sub, "mh_csi", period, ["S", code, client, v.cin if r.random() < 0.7 else "", "", "", "", "", "", "", "",
                                              "", iso(s.date), s.mode, s.function, str(s.units), str(s.minutes) if s.minutes else "",
                                              s.dx, "", "", ""], client, p)
        for ep in cl.sud:
            fips = p.addr_at(max(0, self.w.month_of(ep.admit)))[3]
            sub = county_submitter(fips)
            v = self.view(views, sub, "county", p)
            client = "S" + self.scrambler(f"sud:{fips}", 8)(p.idx)
            provider = r.choice(self.w.providers[fips].caloms)
            events: list[tuple[str, dt.date]] = []
            if ep.admit >= self.w.start:
                events.append(("A", ep.admit))
            else:
                anniv = ep.admit
                while anniv < self.w.start:
                    anniv = anniv.replace(year=anniv.year + 1) if not (anniv.month == 2 and anniv.day == 29) else anniv + dt.timedelta(days=365)
                if anniv <= self.w.end and (ep.discharge is None or anniv < ep.discharge):
                    events.append(("U", anniv))
            if ep.discharge is not None and self.w.start <= ep.discharge <= self.w.end:
                events.append(("D", ep.discharge))
            for rt, d in events:
                period = self.period(d)
                if period is None:
                    continue
                if rt in ("A", "U") or not any(e[0] != "D" for e in events):
                    consent_candidates.append(("SUD", fips, client, d))
                m = self.w.month_of(d)
                given, _middle, family = v.names(m)
                zip5 = "00000" if p.homeless else v.address(m)[2]
                if p.race_pick < 0.01:
                    zip5 = "XXXXX"
                elif p.race_pick > 0.995:
                    zip5 = "ZZZZZ"
                race, eth = self._county_race(p, caloms=True)
                self.emit(sub, "sud_caloms", period, [rt, provider, client, v.cin, v.ssn, v.render(given), v.render(family),
                                                      iso(v.dob), v.sex, race, eth, zip5, iso(ep.admit),
                                                      iso(d) if rt == "D" else "", ep.drug, ep.service_type,
                                                      ep.status if rt == "D" else "", ep.dx], client, p)
        self.consents(p, consent_candidates)

    def _periodic(self, p: Person, d: dt.date) -> list[str]:
        r = self.rng
        age = p.age_at(d)
        living = ref.CSI_LIVING_HOMELESS if p.homeless else r.choice(ref.CSI_LIVING_HOUSED)
        employment = "5" if age < 18 else r.choice(ref.CSI_EMPLOYMENT_ADULT)
        education = f"{min(max(age - 6, 0), 12):02d}" if age < 19 else f"{r.choice((8, 10, 11, 12, 12, 12, 13, 14, 16)):02d}"
        return [living, employment, education]

    def consents(self, p: Person, candidates: list[tuple[str, str, str, dt.date]]) -> None:
        r, c = self.rng, self.cfg.clinical
        done: set[tuple[str, str]] = set()
        for program, fips, client, first in candidates:
            if (program, fips) in done:
                continue
            done.add((program, fips))
            if r.random() >= (c.consent_sud if program == "SUD" else c.consent_mh):
                continue
            signed = first if first >= self.w.start else self.w.start
            signed_at = dt.datetime(signed.year, signed.month, signed.day, r.randrange(8, 18), r.randrange(60), r.randrange(60))
            age = p.age_at(signed)
            grantor = "minor_self" if 12 <= age < 18 and (program == "SUD" or r.random() < 0.5) else "guardian" if age < 18 else "self"
            purposes = "TREAT|HPAYMT|HOPERAT" if r.random() < 0.7 else "TREAT"
            plans = sorted({x for x in p.plan_months if x})
            recipients = "all_treating" if r.random() < 0.3 or not plans else "|".join(plans)
            expires = "" if r.random() < 0.6 else iso(signed + dt.timedelta(days=365))
            cid = self.next_id(f"CF{ref.county_code(fips)}", 6)
            sub = county_submitter(fips)
            period = self.period(signed)
            if period is None:
                continue
            status = "entered_in_error" if r.random() < c.consent_error else "active"
            self.emit(sub, "consent_forms", period, [cid, client, program, signed_at.isoformat(), grantor, purposes, recipients,
                                                     program, expires, "", status], client, p)
            if status == "active" and r.random() < c.consent_revoked:
                rev = signed + dt.timedelta(days=r.randrange(5, 200))
                rperiod = self.period(rev)
                if rperiod is not None:
                    revoked_at = dt.datetime(rev.year, rev.month, rev.day, r.randrange(8, 18), r.randrange(60)).isoformat()
                    self.emit(sub, "consent_forms", rperiod, [cid, client, program, signed_at.isoformat(), grantor, purposes,
                                                              recipients, program, expires, revoked_at, "revoked"], client, p)

    # ------------------------------------------------------------------ dental and registry
    def dental(self, p: Person, cl: Clinical) -> None:
        if not cl.dental:
            return
        v = SourceView(p, "dental", self.rng, self.cfg.noise)
        lid = "D" + self.scrambler("dental", 10)(p.idx)
        by_date: dict[dt.date, list[tuple[str, str]]] = defaultdict(list)
        for d, code, tooth in cl.dental:
            by_date[d].append((code, tooth))
        for d in sorted(by_date):
            period = self.period(d)
            if period is None:
                continue
            m = self.w.month_of(d)
            given, _middle, family = v.names(m)
            zip5 = v.address(m)[2]
            npi = self.rng.choice(self.w.providers[p.addr_at(m)[3]].dentist)
            cid = self.next_id("DN")
            for n, (code, tooth) in enumerate(by_date[d], 1):
                self.emit("dental_medical", "dental_claims", period, [cid, str(n), lid, v.cin, upper_ascii(given),
                                                                      upper_ascii(family), iso(v.dob), v.sex, zip5, iso(d),
                                                                      code, tooth, npi], lid, p)

    def immunizations(self, p: Person, cl: Clinical) -> None:
        if not cl.imm:
            return
        r, w = self.rng, self.w
        v_main = SourceView(p, "registry", r, self.cfg.noise)
        if v_main.dob > cl.imm[0][0]:
            v_main.dob = p.dob  # CAIR rejects doses before the birth date, so such a typo never stays
        v_dup = v_main
        rid = self.scrambler("registry", 9)(p.idx)
        dup_from: dt.date | None = None
        dup = ""
        if r.random() < self.cfg.noise.registry_duplicate_patient and len(cl.imm) > 1:
            dup = self.scrambler("registry", 9)(p.idx + 500_000_000)
            dup_from = r.choice(cl.imm[1:])[0]
            v_dup = SourceView(p, "registry", r, self.cfg.noise)  # entered again, with its own errors
            if v_dup.dob > dup_from:
                v_dup.dob = p.dob
        protection = "Y" if r.random() < self.cfg.clinical.imm_protection_y else r.choice(("N", "N", "N", ""))
        publicity = r.choice(("02", "02", "02", "01", ""))
        race = ref.CDC_RACE[p.group]
        race_code = race[int(p.race_pick * len(race))]
        eth = ref.CDC_HISPANIC if p.group == "hispanic" else ref.CDC_NOT_HISPANIC
        maiden = p.mother_maiden if r.random() < 0.6 else ""
        baby_name = p.dob >= w.start and r.random() < 0.3
        first_period = w.months[0].period
        for d, cvx in cl.imm:
            period = self.period(d) if d >= w.start else first_period
            if period is None:
                continue
            m = max(0, w.month_of(d))
            use_dup = dup_from is not None and d >= dup_from
            v = v_dup if use_dup else v_main
            given, middle, family = v.names(m)
            if baby_name and (d - p.dob).days < 3:
                given, middle = ("BABY GIRL" if p.sex == "F" else "BABY BOY"), ""
            line, city, zip5, fips = v.address(m)
            phone = v.phone(m)
            if phone:
                phone = f"{phone[:3]}-{phone[3:6]}-{phone[6:]}"
            age = p.age_at(d)
            enrolled = 0 <= w.month_of(d) < len(p.plan_months) and p.plan_months[w.month_of(d)] is not None
            vfc = ("V02" if enrolled or d < w.start else r.choice(("V03", "V01", "V05"))) if age < 19 else "V01"
            oral = cvx in ref.ORAL_CVX
            route = "PO" if oral else "SC" if cvx in ("03", "21", "94") and r.random() < 0.7 else "IM"
            site = "" if oral else r.choice(("LT", "RT")) if age < 3 else r.choice(("LD", "RD", "LA", "RA"))
            lot = r.choice(w.lots.get(cvx, ("",)))
            pid_here = dup if use_dup else rid
            self.emit("cair2", "immunizations", period, [
                self.next_id("V", 8), pid_here, v.render(given), v.render(middle), v.render(family), iso(v.dob), v.sex,
                maiden, line, city, zip5, phone, race_code, eth, iso(d), cvx, r.choice(ref.CVX_MVX.get(cvx, ("",))),
                lot, route, site, vfc, protection, publicity, r.choice(w.providers[fips].cair), v.cin,
            ], pid_here, p)

    # ------------------------------------------------------------------ ground truth
    def truth(self, p: Person, cl: Clinical) -> None:
        counties = {a[3] for _, a in p.addr_hist}
        plans = sorted({x for x in p.plan_months if x})
        self.out.people.append([
            p.pid, p.hh, p.twin_of, p.lookalike_of, p.given, p.middle, p.family_at(0), p.family_hist[-1][1] if len(p.family_hist) > 1 else "",
            p.sex, iso(p.dob), iso(p.dod), p.cin, p.ssn, p.county_first, "1" if len(counties) > 1 else "0",
            "1" if len(p.family_hist) > 1 else "0", "1" if p.homeless else "0", "1" if p.smi else "0",
            "1" if p.mh else "0", "1" if p.sud else "0", "|".join(p.chronic),
            str(sum(1 for x in p.plan_months if x)), "|".join(plans), "1" if cl.county_mh_client else "0",
            "1" if cl.county_sud_client else "0",
        ])
        for ev in cl.index:
            self.out.index_events.append([p.pid, ev.kind, iso(ev.date), iso(ev.discharge), str(ev.age), ev.planned,
                                          iso(ev.followup), ev.source])


def render_chunk(world: World, cfg: SynthConfig, chunk: int, first_idx: int, size: int,
                 variants: dict[str, tuple[str, ...]] | None = None) -> ChunkPayload:
    return ChunkRenderer(world, cfg, chunk, first_idx, size, variants).run().payload()

