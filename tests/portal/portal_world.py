"""One hub for the portal tests: organisations, accounts, a real file landed through the API and
ingested, packages published to two LHJs, and a signed-in client per organisation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

CORPUS = Path(__file__).resolve().parents[1] / "conformance"
PASSWORD = "a long test passphrase 7"
PERIOD = "2026-01"
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
    from jobs.publish import package, signing
    from phmx import settings
    from phmx.context import RunContext
    from phmx.portal.app import create_app
    from phmx.portal.directory import Scope, add_token

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
    signer = signing.get_signer()
    # Alameda: two versions for 2025; Butte: one for 2024 (so Alameda's URLs name nothing of Butte's).
    for recipient, period, body in (("lhj_alameda", "2025", "area,measure,value\nA,flu,10\n"),
                                    ("lhj_alameda", "2025", "area,measure,value\nA,flu,11\n"),
                                    ("lhj_butte", "2024", "area,measure,value\nB,flu,3\n")):
        p = package.Package(recipient, "lhj_measures", period, "run-portal")
        p.add("measures.csv", body, "text/csv")
        p.meta = {"purpose": "PUBHLTH"}
        package.deliver(p, settings.load().publish_root, signer=signer)
    return World(home, app, sids[0], ("lhj_measures", "2025", "v2"), tokens)
