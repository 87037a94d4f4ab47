"""Hand-built member histories for the measures tests, written straight into silver and gold.

A test names a member by a short key ("fum_day7"); the builder gives it a member id, a plan
person id, coverage, and the events the test adds. ``write`` puts everything in the lakehouse
of the current PHMX_HOME with the real table contracts. All data is invented.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from phmx import lakehouse
from phmx.feedspec import get_spec
from phmx.tables import (
    BH_SERVICE,
    COVERAGE,
    DENTAL_SERVICE,
    ENCOUNTER,
    IMMUNIZATION,
    MEDICATION,
    MEMBER,
    MEMBER_XWALK,
    Table,
)

PLAN = "mcp_test"
def _label_rules() -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    from consent.disclosure_policy import load_valueset
    from consent.labels import CODE_VALUESETS

    return [(vs.label, tuple(vs.include), tuple(vs.exclude)) for vs in map(load_valueset, CODE_VALUESETS)]


_LABEL_RULES = _label_rules()


def d(s: str | None) -> date | None:
    return date.fromisoformat(s) if s else None


def dx_labels(dx: list[str]) -> list[str]:
    """The labels conform would put on a row with these diagnoses (consent/valuesets/)."""
    codes = [c.replace(".", "").upper() for c in dx]
    return sorted({label for label, inc, exc in _LABEL_RULES for c in codes
                   if c.startswith(inc) and not c.startswith(exc or ("\0",))})


class World:
    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._n = 0

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n:05d}"

    @staticmethod
    def mid(key: str) -> str:
        return f"M-{key}"

    @staticmethod
    def pid(key: str) -> str:
        return f"P-{key}"

    def member(self, key: str, birth: str, *, sex: str = "F", race: str | None = "2106-3",
               ethnicity: str | None = "2186-5", lhj: str | None = "Alameda",
               coverage: list[tuple[str, str | None]] | None = None, plan: str = "BLC001") -> str:
        mid = self.mid(key)
        self.rows["member"].append(dict(member_id=mid, birth_date=d(birth), sex=sex, race=race,
                                        ethnicity=ethnicity, lhj=lhj, county_fips="06001"))
        self.link(key, PLAN, self.pid(key))
        for start, end in coverage if coverage is not None else [("2023-01-01", None)]:
            self.rows["coverage"].append(dict(source=PLAN, source_person_id=self.pid(key), plan_id=plan,
                                              start_date=d(start), end_date=d(end)))
        return mid

    def link(self, key: str, source: str, source_person_id: str) -> None:
        self.rows["xwalk"].append(dict(source=source, source_person_id=source_person_id,
                                       member_id=self.mid(key), link_method="test", link_probability=1.0))

    def encounter(self, key: str, setting: str, day: str, dx: list[str], *, procs: list[str] | None = None,
                  pos: str | None = None, admit: str | None = None, discharge: str | None = None,
                  encounter_id: str | None = None, source: str = PLAN, person: str | None = None) -> str:
        eid = encounter_id or self._id("E")
        self.rows["encounter"].append(dict(
            source=source, encounter_id=eid, source_person_id=person or self.pid(key), setting=setting,
            service_date=d(day), admit_date=d(admit), discharge_date=d(discharge),
            place_of_service=pos or {"ED": "23", "IP": "21"}.get(setting, "11"),
            procedure_codes=procs or [], diagnosis_codes=dx, plan_id="BLC001",
            security_labels=dx_labels(dx)))
        return eid

    def ed(self, key: str, day: str, dx: list[str], **kw: Any) -> str:
        return self.encounter(key, "ED", day, dx, procs=kw.pop("procs", ["99284"]), **kw)

    def ip(self, key: str, admit: str, discharge: str, dx: list[str], **kw: Any) -> str:
        return self.encounter(key, "IP", admit, dx, admit=admit, discharge=discharge, **kw)

    def op(self, key: str, day: str, dx: list[str], procs: list[str] | None = None, pos: str = "11", **kw: Any) -> str:
        return self.encounter(key, "OP", day, dx, procs=procs or ["99213"], pos=pos, **kw)

    def county(self, key: str, program: str, day: str, *, mode: str = "15", function: str = "30",
               dx: list[str] | None = None, person: str | None = None, end: str | None = None) -> None:
        source = f"county_06001_bh:{program.lower()}"
        person = person or f"C-{key}"
        if not any(r["source"] == source and r["source_person_id"] == person for r in self.rows["xwalk"]):
            self.link(key, source, person)
        feed = list(get_spec("sud_caloms" if program == "SUD" else "mh_csi").labels)  # as conform labels them
        dxs = dx or (["F1120"] if program == "SUD" else ["F200"])
        self.rows["bh"].append(dict(
            source=source, service_id=self._id("S"), source_person_id=person, program=program,
            record_type="A" if program == "SUD" else "S", county_fips="06001", service_date=d(day),
            end_date=d(end), mode_of_service=mode, service_function=function, diagnosis_codes=dxs,
            security_labels=sorted(set(feed) | set(dx_labels(dxs)))))

    def dental(self, key: str, day: str, cdt: str) -> None:
        self.rows["dental"].append(dict(source=PLAN, service_id=self._id("D"), source_person_id=self.pid(key),
                                        service_date=d(day), cdt_code=cdt, security_labels=[]))

    def imm(self, key: str, day: str, cvx: str, status: str = "CP", action: str = "A") -> None:
        self.rows["imm"].append(dict(source=PLAN, immunization_id=self._id("V"), source_person_id=self.pid(key),
                                     admin_date=d(day), cvx=cvx, completion_status=status, action_code=action,
                                     security_labels=[]))

    def rx(self, key: str, day: str, ndc: str) -> None:
        self.rows["rx"].append(dict(source=PLAN, rx_claim_id=self._id("R"), source_person_id=self.pid(key),
                                    fill_date=d(day), ndc=ndc, days_supply=30, plan_id="BLC001",
                                    security_labels=[]))

    def write(self, spark: Any) -> None:
        targets: dict[str, Table] = {"member": MEMBER, "xwalk": MEMBER_XWALK, "coverage": COVERAGE,
                                     "encounter": ENCOUNTER, "bh": BH_SERVICE, "dental": DENTAL_SERVICE,
                                     "imm": IMMUNIZATION, "rx": MEDICATION}
        for name, table in targets.items():
            rows = self.rows.get(name, [])
            data = [tuple(r.get(c) for c in table.column_names) for r in rows]
            lakehouse.append(spark.createDataFrame(data, table.ddl), table)
