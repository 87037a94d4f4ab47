"""A member's statement of how their data were used: one member's disclosures and consents in force,
in English and Spanish, as a page, JSON and a PDF whose text is read back; nobody else's data in
it (two members share a disclosure event and a local client id); every statement a ledger access."""

from __future__ import annotations

import hashlib
import io
import json
import re

from portal_world import COUNTY_A, COUNTY_B, DISCLOSED_MEMBER, OTHER_MEMBER, World
from pypdf import PdfReader

# What belongs to the other member only: its id, its own recipient and its consent.
OTHERS = (OTHER_MEMBER, "mcp_beta", f"{COUNTY_B}:F-200", "F-200")


def _notes() -> list[dict]:
    from consent import ledger

    return [p for p in (json.loads(e["payload"]) for e in ledger.read_entries().to_pylist() if e["entry_type"] == "note")
            if p.get("event") == "portal_access" and p.get("action") == "member_statement"]


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in reader.pages))


def _post_form(world: World, org: str, path: str, member: str, language: str):  # noqa: ANN202 - httpx.Response
    c = world.signed_in(org)
    return c.post(path, data={"member_id": member, "language": language, "csrf_token": world.csrf[org]})


def test_the_statement_lists_one_members_disclosures_and_consents_in_force_and_nothing_else(world: World):
    c = world.signed_in("state_audit")
    one = c.post("/api/v1/statements", json={"member_id": DISCLOSED_MEMBER, "language": "en"},
                 headers={"X-CSRF-Token": world.csrf["state_audit"]})
    assert one.status_code == 200, one.text
    s = one.json()
    assert [(d["recipient"], d["recipient_name"], d["purpose"], d["data_class"]) for d in s["disclosures"]] == [
        ("lhj_alameda", "Alameda County Public Health", "PUBHLTH", "immunization")]
    # F-101 was revoked and F-102 expired: neither is in force; F-200 is the other member's.
    assert [c["consent_id"] for c in s["consents"]] == [f"{COUNTY_A}:F-100"]
    assert s["consents"][0]["says"] == [
        "allows sharing of substance use disorder information with Alpha Health Plan for health care operations, "
        "treatment"]
    blob = json.dumps(s)
    assert not [o for o in OTHERS if o in blob]
    # The other member's statement: its own two disclosures and its own consent only.
    two = c.post("/api/v1/statements", json={"member_id": OTHER_MEMBER, "language": "es"},
                 headers={"X-CSRF-Token": world.csrf["state_audit"]}).json()
    assert sorted((d["recipient"], d["data_class"]) for d in two["disclosures"]) == [
        ("lhj_alameda", "SUD"), ("mcp_beta", "SUD")]
    assert [c["consent_id"] for c in two["consents"]] == [f"{COUNTY_B}:F-200"]
    assert DISCLOSED_MEMBER not in json.dumps(two) and "F-100" not in json.dumps(two)
    assert two["disclosures"][0]["purpose_text"] in ("salud pública", "tratamiento")


def test_an_auditor_reads_the_statement_as_a_page_in_english_and_spanish(world: World):
    en = _post_form(world, "state_audit", "/statements", DISCLOSED_MEMBER, "en")
    assert en.status_code == 200
    assert 'lang="en"' in en.text and "Statement of how your health information was used" in en.text
    assert "Alameda County Public Health" in en.text and "public health" in en.text
    assert "immunization records" in en.text and f"{COUNTY_A}:F-100" in en.text
    es = _post_form(world, "state_audit", "/statements", DISCLOSED_MEMBER, "es")
    assert es.status_code == 200 and 'lang="es"' in es.text
    for words in ("Declaración sobre cómo se usó su información de salud", "salud pública", "registros de vacunación",
                  "permite compartir", "Sus consentimientos vigentes"):
        assert words in es.text, words
    for page in (en.text, es.text):
        assert not [o for o in OTHERS if o in page]
        assert "F-101" not in page and "F-102" not in page


def test_an_operator_downloads_the_statement_as_a_pdf_whose_text_is_the_members_alone(world: World):
    before = len(_notes())
    r = _post_form(world, "hub_ops", "/statements/pdf", DISCLOSED_MEMBER, "es")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith('attachment; filename="member-statement-es-')
    assert DISCLOSED_MEMBER not in r.headers["content-disposition"]
    text = _text(r.content)
    for words in ("Declaración sobre cómo se usó su información de salud", DISCLOSED_MEMBER,
                  "Alameda County Public Health", "salud pública", "registros de vacunación", "F-100",
                  "Hub Operations"):
        assert words in text, (words, text[:400])
    assert not [o for o in OTHERS if o in text] and "F-101" not in text
    en = world.signed_in("hub_ops").post("/api/v1/statements/pdf", json={"member_id": OTHER_MEMBER, "language": "en"},
                                         headers={"X-CSRF-Token": world.csrf["hub_ops"]})
    assert en.status_code == 200 and en.content.startswith(b"%PDF")
    other = _text(en.content)
    assert "Statement of how your health information was used" in other and "mcp_beta" in other
    assert DISCLOSED_MEMBER not in other and "F-100" not in other
    # Each statement is an access in the ledger: who, which format, a SHA-256 of the member id only.
    notes = _notes()[before:]
    assert [(n["organisation"], n["resource"]) for n in notes] == [
        ("hub_ops", {"language": "es", "format": "pdf"}), ("hub_ops", {"language": "en", "format": "pdf"})]
    assert notes[0]["subject_sha256"] == hashlib.sha256(DISCLOSED_MEMBER.encode()).hexdigest()
    assert DISCLOSED_MEMBER not in json.dumps(notes) and OTHER_MEMBER not in json.dumps(notes)


def test_the_member_id_never_travels_in_a_url_and_bad_input_is_refused(world: World):
    paths = [r.path for r in world.app.routes if getattr(r, "name", "").startswith(("statement", "api_statement"))]
    assert len(paths) == 5 and not [p for p in paths if "{" in p]
    form = world.signed_in("state_audit").get("/statements")
    assert form.status_code == 200 and 'method="post" action="/statements"' in form.text
    bad = _post_form(world, "state_audit", "/statements", "<script>", "en")
    assert bad.status_code == 422 and "<script>" not in bad.text
    wrong_lang = world.signed_in("state_audit").post(
        "/api/v1/statements", json={"member_id": DISCLOSED_MEMBER, "language": "fr"},
        headers={"X-CSRF-Token": world.csrf["state_audit"]})
    assert wrong_lang.status_code == 422
    # A submitter or a recipient may not produce anyone's statement.
    assert _post_form(world, "cair2", "/statements", DISCLOSED_MEMBER, "en").status_code == 403
    assert _post_form(world, "lhj_alameda", "/statements/pdf", DISCLOSED_MEMBER, "en").status_code == 403
