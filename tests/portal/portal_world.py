"""One hub for the portal tests: organisations, accounts, a real file landed through the API and
ingested, packages published to two LHJs, and a signed-in client per organisation."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from fastapi.testclient import TestClient

CORPUS = Path(__file__).resolve().parents[1] / "conformance"
PASSWORD = "a long test passphrase 7"
PERIOD = "2026-01"
DISCLOSED_MEMBER = "M-SYNTH-0001"
OTHER_MEMBER = "M-SYNTH-0002"  # disclosed in the same event, with consents of its own: never in the first's statement
COUNTY_A, COUNTY_B = "county_06001_bh", "county_06013_bh"
ORGS = [
    {"id": "cair2", "name": "California Immunization Registry", "kind": "submitter", "submitter": "cair2"},
    {"id": "alpha_plan", "name": "Alpha Health Plan", "kind": "submitter", "submitter": "mcp_alpha"},
    {"id": "lhj_alameda", "name": "Alameda County Public Health", "kind": "recipient", "recipient": "lhj_alameda"},
    {"id": "lhj_butte", "name": "Butte County Public Health", "kind": "recipient", "recipient": "lhj_butte"},
    {"id": "state_audit", "name": "State Privacy Office", "kind": "auditor"},
    {"id": "hub_ops", "name": "Hub Operations", "kind": "operator"},
]
USERS = {"cair2": "ann@cair2", "alpha_plan": "bob@alpha", "lhj_alameda": "cy@alameda", "lhj_butte": "di@butte",
         "state_audit": "eve@audit", "hub_ops": "fay@ops"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       follow_redirects=False)


@dataclass
class World:
    home: Path
    app: Any
    submission_id: str
    package: tuple[str, str, str]  # feed, period, version of lhj_alameda's package
    tokens: dict[str, str]
    disclosure_seq: int = 0  # the disclosure of both members to lhj_alameda
    clients: dict[str, TestClient] = field(default_factory=dict)
    csrf: dict[str, str] = field(default_factory=dict)

    def signed_in(self, org: str) -> TestClient:
        if org not in self.clients:
            c = TestClient(self.app)
            r = login(c, USERS[org])
            assert r.status_code == 303, r.text
            self.clients[org] = c
            self.csrf[org] = csrf_of(c.get("/").text)
        return self.clients[org]

    def forget(self, org: str) -> None:
        self.clients.pop(org, None)
        self.csrf.pop(org, None)


def write_directory(home: Path) -> None:
    from phmx import settings
    from phmx.portal.directory import add_user

    ps = settings.load_portal()
    Path(ps.orgs_file).parent.mkdir(parents=True, exist_ok=True)
    Path(ps.orgs_file).write_text(yaml.safe_dump({"organisations": ORGS}))
    for org, user in USERS.items():
        add_user(ps.orgs_file, ps.users_file, username=user, organisation=org, password=PASSWORD)
    return None


def build(home: Path, spark: Any) -> World:
    from jobs.ingest import stage as ingest
    from jobs.publish import package
    from phmx import settings
    from phmx.context import RunContext
    from phmx.portal.app import create_app
    from phmx.portal.directory import Scope, add_token
    from privacy import signing

    write_directory(home)
    ps = settings.load_portal()
    tokens = {"submit": add_token(ps.orgs_file, ps.users_file, organisation="cair2", scopes=[Scope.SUBMIT]),
              "read": add_token(ps.orgs_file, ps.users_file, organisation="lhj_alameda", scopes=[Scope.READ])}
    app = create_app()
    api = TestClient(app)
    # A public NIST test message, sent by machine with the submit-only token, then ingested.
    r = api.post("/api/v1/submissions", headers={"Authorization": f"Bearer {tokens['submit']}"},
                 data={"feed": "immunizations_vxu", "period": PERIOD},
                 files={"file": ("nist_iz_001.hl7", (CORPUS / "hl7v2_vxu" / "nist_iz_001.hl7").read_bytes())})
    assert r.status_code == 201, r.text
    ingest.run(spark, RunContext.new())
    sids = [p.stem for p in (home / "outbox" / "cair2" / "receipts").rglob("sub-*.json")]
    assert len(sids) == 1, sids
    signer = signing.get_signer(signing.PUBLISH)
    # Alameda: two versions for 2025; Butte: one for 2024 (so Alameda's URLs name nothing of Butte's).
    for recipient, period, body in (("lhj_alameda", "2025", "area,measure,value\nA,flu,10\n"),
                                    ("lhj_alameda", "2025", "area,measure,value\nA,flu,11\n"),
                                    ("lhj_butte", "2024", "area,measure,value\nB,flu,3\n")):
        p = package.Package(recipient, "lhj_measures", period, "run-portal")
        p.add("measures.csv", body, "text/csv")
        p.meta = {"purpose": "PUBHLTH"}
        package.deliver(p, settings.load().publish_root, signer=signer)
    # One disclosure of one synthetic member, recorded the way publish records it, for the auditor.
    from consent import ledger

    members = spark.createDataFrame([(DISCLOSED_MEMBER, "immunization"), (OTHER_MEMBER, "SUD")],
                                    ["member_id", "data_class"])
    seq = ledger.record_disclosure(spark, recipient="lhj_alameda", purpose="PUBHLTH", run_id="run-portal",
                             files=[("publish/lhj_alameda/lhj_measures/2025/v2/measures.csv", "0" * 64)],
                             members_by_class=members, rule_ids=["pubhlth_aggregate"], consent_ids=[])
    other = spark.createDataFrame([(OTHER_MEMBER, "SUD", ["PART2-2.31-WRITTEN-CONSENT"], [f"{COUNTY_B}:F-200"])],
                                  "member_id string, data_class string, rule_ids array<string>, consent_ids array<string>")
    ledger.record_disclosure(spark, recipient="mcp_beta", purpose="TREAT", run_id="run-portal",
                             files=[("publish/mcp_beta/plan_feed/2025/v1/members.csv", "1" * 64)],
                             members_by_class=other, rule_ids=["PART2-2.31-WRITTEN-CONSENT"],
                             consent_ids=[f"{COUNTY_B}:F-200"])
    consents(spark)
    return World(home, app, sids[0], ("lhj_measures", "2025", "v2"), tokens, seq)


def consents(spark: Any) -> None:
    """County consent forms through the consent registry (bronze -> silver.consent) and the crosswalk
    that links them to members. Both members are client "C1" locally, in two counties' id spaces."""
    from consent_testdata import form, write_forms

    from consent import registry
    from phmx import lakehouse
    from phmx.tables import MEMBER_XWALK

    write_forms(spark, [
        form("F-100", "C1", recipients="mcp_alpha", purposes="TREAT|HOPERAT", submitter=COUNTY_A),
        form("F-101", "C1", recipients="mcp_alpha", classes="SUD", status="revoked", revoked="2024-06-01T00:00:00",
             submitter=COUNTY_A, row=2),
        form("F-102", "C1", recipients="all_treating", classes="SUD", expires="2024-12-31", submitter=COUNTY_A, row=3),
        form("F-200", "C1", recipients="mcp_beta", purposes="TREAT", submitter=COUNTY_B, row=4),
    ])
    registry.refresh(spark)
    schema = lakehouse.conform_to(spark.createDataFrame([], MEMBER_XWALK.ddl), MEMBER_XWALK).schema
    now = datetime(2024, 1, 1, tzinfo=UTC)
    xw = spark.createDataFrame([(f"{COUNTY_A}:sud", "C1", DISCLOSED_MEMBER, "exact", 1.0, "r0", now),
                                (f"{COUNTY_B}:sud", "C1", OTHER_MEMBER, "exact", 1.0, "r0", now)], schema)
    lakehouse.overwrite(xw, MEMBER_XWALK)
    # Decisions in force (what the consent stage writes): two permits and a deny.
    import pyarrow as pa

    from phmx.tables import CONSENT_DECISION

    types = {"string": pa.string(), "array<string>": pa.list_(pa.string()), "timestamp": pa.timestamp("us", tz="UTC")}
    schema_d = pa.schema([(n, types[t]) for n, t in CONSENT_DECISION.columns])
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [
        (DISCLOSED_MEMBER, "GENERAL", "PUBHLTH", "lhj_alameda", "permit", ["HIPAA-164.512B-PUBLIC-HEALTH"], []),
        (OTHER_MEMBER, "SUD", "TREAT", "mcp_beta", "permit", ["PART2-2.31-WRITTEN-CONSENT"], [f"{COUNTY_B}:F-200"]),
        (OTHER_MEMBER, "SUD", "TREAT", "mcp_alpha", "deny", ["DEFAULT-DENY"], []),
    ]
    names = [n for n, _ in CONSENT_DECISION.columns]
    data = [dict(zip(names, (m, c, p, r, d, rules, cons, t0, None, "2026.1", "run-portal", t0), strict=True))
            for m, c, p, r, d, rules, cons in rows]
    lakehouse.append_arrow(CONSENT_DECISION, pa.Table.from_pylist(data, schema=schema_d))


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """The application under uvicorn on 127.0.0.1 (an ephemeral port) in a thread; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert not thread.is_alive(), "uvicorn did not stop"
