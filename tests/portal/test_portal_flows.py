"""The portal end to end on one hub: a submitter's upload and receipt, a recipient's verified
download, an auditor's ledger view and accounting of disclosures, each access in the ledger; the
refusals (other organisations, bad uploads, CSRF, rate limit) and the security headers."""

from __future__ import annotations

import json
import time

from fastapi.testclient import TestClient
from portal_world import CORPUS, DISCLOSED_MEMBER, PASSWORD, PERIOD, World, csrf_of, login


def _notes(action: str) -> list[dict]:
    from consent import ledger

    out = []
    for e in ledger.read_entries().to_pylist():
        if e["entry_type"] == "note":
            p = json.loads(e["payload"])
            if p.get("event") == "portal_access" and p.get("action") == action:
                out.append(p)
    return out


def test_a_submitter_reads_the_receipt_and_ack_of_the_file_it_sent(world: World):
    c = world.signed_in("cair2")
    history = c.get("/api/v1/submissions").json()
    assert [(h["feed"], h["period"], h["file"], h["status"]) for h in history] == [
        ("immunizations_vxu", PERIOD, "nist_iz_001.hl7", "accepted")]
    assert history[0]["rule_summary"] == [] and history[0]["rows_accepted"] == 1
    receipt = c.get(f"/api/v1/submissions/{world.submission_id}").json()
    assert receipt["status"] == "accepted" and receipt["rows_landed"] == 1 and receipt["submitter"] == "cair2"
    acks = c.get(f"/api/v1/submissions/{world.submission_id}/acknowledgments").json()
    assert list(acks) == [".ack.hl7"] and "MSA|AA" in acks[".ack.hl7"]
    page = c.get(f"/submissions/{world.submission_id}")
    assert page.status_code == 200 and "nist_iz_001.hl7" in page.text and "MSA|AA" in page.text
    assert "nist_iz_001.hl7" in c.get("/submissions").text


def test_another_organisation_cannot_tell_a_submission_exists(world: World):
    other = world.signed_in("alpha_plan")
    theirs = other.get(f"/api/v1/submissions/{world.submission_id}")
    missing = other.get("/api/v1/submissions/sub-00000000000000000000")
    assert theirs.status_code == missing.status_code == 404 and theirs.json() == missing.json()
    assert other.get("/api/v1/submissions").json() == []
    assert other.get(f"/submissions/{world.submission_id}").status_code == 404
    # a recipient's or auditor's account is refused outright
    assert world.signed_in("lhj_alameda").get(f"/api/v1/submissions/{world.submission_id}").status_code == 403


def test_uploads_land_only_in_the_callers_prefix_and_bad_ones_are_refused(world: World):
    c = world.signed_in("cair2")
    hdr = {"X-CSRF-Token": world.csrf["cair2"]}
    vxu = (CORPUS / "hl7v2_vxu" / "aira_two_doses.hl7").read_bytes()

    def send(name: str, data: bytes, feed: str = "immunizations_vxu", period: str = "2026-02") -> tuple[int, dict]:
        r = c.post("/api/v1/submissions", headers=hdr, data={"feed": feed, "period": period},
                   files={"file": (name, data)})
        return r.status_code, r.json()

    status, body = send("../../mcp_alpha/enrollment/2026-02/évil name.hl7", vxu)
    assert status == 201 and body["file"] == "evil_name.hl7" and body["submitter"] == "cair2"
    assert (world.home / "landing" / "cair2" / "immunizations_vxu" / "2026-02" / "evil_name.hl7").read_bytes() == vxu
    assert not (world.home / "landing" / "mcp_alpha").exists()
    assert send("evil_name.hl7", vxu)[0] == 409  # never overwritten
    assert send("a.hl7", b"PK\x03\x04zipped")[0] == 415
    assert send("a.hl7", b"ISA*00*...")[0] == 415  # an X12 file for an HL7 feed
    status, body = send("a.hl7", vxu, period="2026-13")
    assert status == 422 and body["field"] == "period" and body["fix"]
    status, body = send("a.csv", b"a,b\n", feed="enrollment")
    assert status == 422 and body["field"] == "feed" and "immunizations_vxu" in body["fix"]
    assert send("...", vxu)[0] == 422


def test_a_form_post_without_the_sessions_csrf_token_is_refused(world: World):
    c = world.signed_in("state_audit")
    r = c.post("/audit/disclosures", data={"member_id": "M1"})
    assert r.status_code == 403
    r = c.post("/api/v1/disclosures", json={"member_id": "M1"}, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403


def test_a_recipient_downloads_and_verifies_only_its_own_packages(world: World):
    c = world.signed_in("lhj_alameda")
    feed, period, version = world.package
    pkgs = c.get("/api/v1/packages").json()
    assert [(p["feed"], p["period"], p["latest"], p["versions"]) for p in pkgs] == [(feed, period, "v2", ["v1", "v2"])]
    pkg = c.get(f"/api/v1/packages/{feed}/{period}/{version}").json()
    assert pkg["verification"]["ok"] and pkg["verification"]["fingerprint"].startswith("SHA256:")
    keys = c.get("/api/v1/keys/publish").json()["keys"]
    assert [k["fingerprint"] for k in keys] == [pkg["verification"]["fingerprint"]]
    before = len(_notes("download"))
    r = c.get(f"/api/v1/packages/{feed}/{period}/{version}/files/measures.csv")
    assert r.status_code == 200 and r.content == b"area,measure,value\nA,flu,11\n"
    notes = _notes("download")
    assert len(notes) == before + 1 and notes[-1]["organisation"] == "lhj_alameda"
    assert notes[-1]["resource"] == {"feed": feed, "period": period, "version": version, "file": "measures.csv"}
    # Butte's package exists, but not for Alameda; unlisted files are not served
    for path in (f"/api/v1/packages/{feed}/{period}/{version}/files/../../../lhj_butte/{feed}/2024/v1/measures.csv",
                 f"/api/v1/packages/{feed}/2024/v1",
                 f"/api/v1/packages/{feed}/{period}/{version}/files/publisher.pem.bak",
                 f"/api/v1/packages/{feed}/{period}/v9"):
        assert c.get(path).status_code == 404
    butte = world.signed_in("lhj_butte")
    assert butte.get(f"/api/v1/packages/{feed}/{period}/{version}").status_code == 404
    assert butte.get(f"/api/v1/packages/{feed}/2024/v1/files/measures.csv").content == b"area,measure,value\nB,flu,3\n"
    page = c.get(f"/packages/{feed}/{period}/{version}")
    assert "Verified" in page.text and "measures.csv" in page.text
    # a read token of Alameda's works without a session; a package file of a tampered package says so
    tok = TestClient(world.app).get("/api/v1/packages", headers={"Authorization": f"Bearer {world.tokens['read']}"})
    assert tok.status_code == 200 and len(tok.json()) == 1
    (world.home / "publish" / "lhj_alameda" / feed / period / "v1" / "measures.csv").write_text("altered\n")
    v1 = c.get(f"/api/v1/packages/{feed}/{period}/v1").json()["verification"]
    assert not v1["ok"] and "measures.csv" in v1["detail"] and str(world.home) not in v1["detail"]


def test_an_auditor_verifies_the_ledger_and_accounts_for_a_member_by_post(world: World):
    from consent import audit

    c = world.signed_in("state_audit")
    status = c.get("/api/v1/ledger/verify").json()
    assert status["ok"] and status["head"]
    r = c.post("/api/v1/disclosures", json={"member_id": "MEMBER-NOT-THERE"},
               headers={"X-CSRF-Token": world.csrf["state_audit"]})
    assert r.status_code == 200 and r.json() == []
    note = _notes("accounting_of_disclosures")[-1]
    assert "MEMBER-NOT-THERE" not in json.dumps(note) and len(note["subject_sha256"]) == 64
    page = c.post("/audit/disclosures", data={"member_id": "MEMBER-NOT-THERE",
                                              "csrf_token": world.csrf["state_audit"]})
    assert page.status_code == 200 and "0 disclosure(s)" in page.text
    found = c.post("/api/v1/disclosures", json={"member_id": DISCLOSED_MEMBER},
                   headers={"X-CSRF-Token": world.csrf["state_audit"]}).json()
    assert [(d["recipient"], d["purpose"], d["data_class"]) for d in found] == [
        ("lhj_alameda", "PUBHLTH", "immunization")]
    assert audit.verify().ok  # the access notes keep the chain and signatures whole


def test_sign_in_is_rate_limited_and_sessions_carry_safe_cookie_flags(world: World):
    c = TestClient(world.app)
    for _ in range(5):
        assert login(c, "fay@ops", "wrong password here").status_code == 401
    r = login(c, "fay@ops")  # the right password is not even checked now
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    ok = TestClient(world.app)
    r = login(ok, "eve@audit", PASSWORD)
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert login(TestClient(world.app), "nobody@x").status_code == 401


def test_every_response_carries_the_security_headers(world: World):
    c = TestClient(world.app)
    for r in (c.get("/login"), c.get("/api/v1/me"), c.get("/static/portal.css"), c.get("/submissions")):
        h = r.headers
        assert "script-src 'self'" in h["content-security-policy"] and "frame-ancestors 'none'" in \
            h["content-security-policy"] and "unsafe-inline" not in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff" and h["cache-control"] == "no-store"
        assert "strict-transport-security" not in h  # no TLS here
    assert c.get("/api/v1/me").status_code == 401
    assert c.get("/submissions", follow_redirects=False).headers["location"] == "/login"
    page = c.get("/login").text
    assert "<script" not in page and "style=" not in page
    assert csrf_of(page)


def test_an_upload_over_the_limit_is_cut_off_with_413(world: World):
    import dataclasses

    from portal_world import USERS

    from phmx import settings
    from phmx.portal.app import create_app

    app = create_app(dataclasses.replace(settings.load_portal(), max_upload_bytes=4096))
    c = TestClient(app)
    assert login(c, USERS["cair2"]).status_code == 303
    token = csrf_of(c.get("/submissions").text)
    r = c.post("/api/v1/submissions", headers={"X-CSRF-Token": token}, data={"feed": "immunizations_vxu",
               "period": "2026-05"}, files={"file": ("big.hl7", b"MSH|" + b"x" * 10_000)})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert not (world.home / "landing" / "cair2" / "immunizations_vxu" / "2026-05").exists()


def test_the_history_read_from_receipts_matches_the_submissions_ledger_and_sees_new_receipts(world: World):
    """The history page reads receipts (no engine per request): it must say what bronze.submissions says."""
    from jobs.ingest.cli import list_submissions
    from phmx.portal import views

    c = world.signed_in("cair2")
    ledger_rows = list_submissions("cair2")
    history = c.get("/api/v1/submissions").json()
    keys = ("submission_id", "feed", "period", "status", "rows_landed", "rows_accepted", "rows_quarantined",
            "source_file_sha256", "superseded_by")
    assert [tuple(h[k] for k in keys) for h in history] == [tuple(r[k] for k in keys) for r in ledger_rows]
    # A receipt written after the index was filled (or rewritten) is seen on the next request.
    src = next((world.home / "outbox" / "cair2" / "receipts").rglob(f"{world.submission_id}.json"))
    doc = json.loads(src.read_text())
    twin = {**doc, "submission_id": "sub-" + "f" * 20, "received_at": "2099-01-01T00:00:00+00:00",
            "status": "rejected", "rows_accepted": 0}
    new = src.with_name(twin["submission_id"] + ".json")
    wait = views.HISTORY_TTL_S + 0.1  # a history is rebuilt at most once per HISTORY_TTL_S
    try:
        new.write_text(json.dumps(twin))
        time.sleep(wait)
        top = c.get("/api/v1/submissions").json()[0]
        assert (top["submission_id"], top["status"], top["rows_accepted"]) == (twin["submission_id"], "rejected", 0)
        new.write_text(json.dumps({**twin, "status": "accepted_with_errors", "rows_accepted": 1, "extra": "x" * 9}))
        time.sleep(wait)
        assert c.get("/api/v1/submissions").json()[0]["status"] == "accepted_with_errors"
        assert c.get("/api/v1/submissions", params={"period": "1999-01"}).json() == []
        assert views.submissions(world.app.state.directory.principal_for("cy@alameda")) == []
    finally:
        new.unlink()
    time.sleep(wait)
    assert [h["submission_id"] for h in c.get("/api/v1/submissions").json()] == [world.submission_id]


def test_packages_on_an_s3_publish_root_are_verified_and_streamed_from_s3(world: World, s3_bucket: str,
                                                                         monkeypatch):
    """A hub whose publish zone is S3 (moto on 127.0.0.1): the recipient's list, verification and
    downloads come from the bucket, streamed; an object altered in the bucket fails verification
    naming the file (not the bucket); another organisation still gets 404."""
    from phmx import storage

    local = str(world.home / "publish")
    root = f"s3://{s3_bucket}/publish"
    for f in storage.list_files(local):
        storage.write_bytes(storage.join(root, f.relpath), storage.read_bytes(f.uri))
    monkeypatch.setenv("PHMX_PUBLISH_ROOT", root)
    c = world.signed_in("lhj_alameda")
    feed, period, version = world.package
    pkgs = c.get("/api/v1/packages").json()
    assert [(p["feed"], p["period"], p["latest"]) for p in pkgs] == [(feed, period, "v2")]
    pkg = c.get(f"/api/v1/packages/{feed}/{period}/{version}").json()
    assert pkg["verification"]["ok"], pkg["verification"]
    assert {f["name"] for f in pkg["files"]} >= {"measures.csv", "manifest.json", "manifest.sig"}
    assert all(f["bytes"] > 0 for f in pkg["files"])
    before = len(_notes("download"))
    r = c.get(f"/api/v1/packages/{feed}/{period}/{version}/files/measures.csv")
    assert r.status_code == 200 and r.content == b"area,measure,value\nA,flu,11\n"
    assert 'filename="measures.csv"' in r.headers["content-disposition"]
    notes = _notes("download")
    assert len(notes) == before + 1 and notes[-1]["resource"]["file"] == "measures.csv"
    assert c.get(f"/api/v1/packages/{feed}/{period}/{version}/files/not-listed.csv").status_code == 404
    assert world.signed_in("lhj_butte").get(f"/api/v1/packages/{feed}/{period}/{version}").status_code == 404
    storage.write_bytes(storage.join(root, "lhj_alameda", feed, period, version, "measures.csv"), b"altered\n")
    bad = c.get(f"/api/v1/packages/{feed}/{period}/{version}").json()["verification"]
    assert not bad["ok"] and bad["detail"].startswith("measures.csv: SHA-256 does not match")
    assert s3_bucket not in bad["detail"]
