"""The portal in headless Chromium (Debian's, driven by Playwright): each role's main task done
through the pages, every page checked with axe-core for WCAG 2.1 A/AA, screenshots kept.

axe-core is vendored (tests/portal/vendor/axe.min.js, see SOURCES.md) and evaluated in the page
through the DevTools protocol, which the page's CSP (no inline or foreign script) does not block.
Screenshots go to var/test-artifacts/portal/ for CI to keep.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from portal_world import CORPUS, DISCLOSED_MEMBER, PASSWORD, USERS, World, serve

CHROMIUM = Path("/usr/bin/chromium")
AXE = (Path(__file__).resolve().parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
SHOTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "portal"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[tuple[object, str]]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: `apt-get install -y chromium` (make test does it)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serve(world.app) as base, sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b, base
        finally:
            b.close()


def _accessible(page, name: str) -> None:  # noqa: ANN001 - a Playwright page
    """axe-core finds no WCAG 2.1 A/AA violation on the page; a screenshot is kept either way."""
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.evaluate(AXE)
    result = page.evaluate("o => axe.run(document, o)", {"runOnly": {"type": "tag", "values": WCAG}})
    bad = [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
           for v in result["violations"]]
    assert not bad, f"{name}: " + json.dumps(bad)
    assert result["passes"], "axe ran no checks"


def _sign_in(browser_and_base, org: str):  # noqa: ANN202
    b, base = browser_and_base
    ctx = b.new_context(base_url=base, accept_downloads=True)
    page = ctx.new_page()
    page.goto("/login")
    page.get_by_label("Username").fill(USERS[org])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    return ctx, page


def test_sign_in_page_is_accessible_and_scripts_are_blocked(browser):
    b, base = browser
    page = b.new_page(base_url=base)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto("/login")
    _accessible(page, "login")
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.pwned = 1';
                             document.body.appendChild(s); }""")
    assert page.evaluate("() => window.pwned") is None  # the CSP refuses inline script
    assert any("Content Security Policy" in e for e in errors)
    page.close()


def test_a_submitter_uploads_a_file_and_reads_its_receipt_and_ack(browser, world: World):
    ctx, page = _sign_in(browser, "cair2")
    assert page.url.endswith("/submissions")
    page.get_by_label("Feed", exact=True).select_option("immunizations_vxu")
    page.get_by_label("Reporting month (YYYY-MM)").fill("2026-06")
    page.get_by_label("File", exact=True).set_input_files(str(CORPUS / "hl7v2_vxu" / "mcir_dtap.hl7"))
    page.get_by_role("button", name="Send").click()
    assert "Received mcir_dtap.hl7 for immunizations_vxu 2026-06" in page.get_by_role("status").inner_text()
    assert (world.home / "landing" / "cair2" / "immunizations_vxu" / "2026-06" / "mcir_dtap.hl7").is_file()
    _accessible(page, "submitter-history")
    page.get_by_role("link", name=world.submission_id).click()
    assert "accepted" in page.inner_text("main") and "MSA|AA" in page.inner_text("main")
    _accessible(page, "submitter-receipt")
    ctx.close()


def test_an_lhj_downloads_a_verified_package(browser, world: World):
    ctx, page = _sign_in(browser, "lhj_alameda")
    assert page.url.endswith("/packages")
    _accessible(page, "recipient-packages")
    page.get_by_role("link", name="v2 (latest)").click()
    assert "Verified" in page.get_by_role("status").inner_text()
    _accessible(page, "recipient-package")
    with page.expect_download() as dl:
        page.get_by_role("link", name="measures.csv").click()
    assert Path(dl.value.path()).read_bytes() == b"area,measure,value\nA,flu,11\n"
    ctx.close()


def test_an_auditor_finds_a_members_disclosures(browser, world: World):
    ctx, page = _sign_in(browser, "state_audit")
    assert page.url.endswith("/audit")
    assert "OK" in page.get_by_role("status").inner_text()
    _accessible(page, "auditor-ledger")
    page.get_by_label("Member id").fill(DISCLOSED_MEMBER)
    page.get_by_role("button", name="Look up").click()
    assert DISCLOSED_MEMBER not in page.url
    assert "1 disclosure(s)" in page.inner_text("main") and "lhj_alameda" in page.inner_text("main")
    _accessible(page, "auditor-disclosures")
    ctx.close()


def test_an_operator_prepares_a_members_statement_in_spanish_and_downloads_the_pdf(browser, world: World):
    ctx, page = _sign_in(browser, "hub_ops")
    page.get_by_role("link", name="Prepare a member's statement of how their data were used").click()
    _accessible(page, "operator-statement-form")
    page.get_by_label("Member id").fill(DISCLOSED_MEMBER)
    page.get_by_label("Español (Spanish)").check()
    page.get_by_role("button", name="Show statement").click()
    assert DISCLOSED_MEMBER not in page.url and page.url.endswith("/statements")
    main = page.inner_text("main")
    assert "Declaración sobre cómo se usó su información de salud" in main and "salud pública" in main
    _accessible(page, "operator-statement-es")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download this statement as PDF").click()
    assert dl.value.suggested_filename.startswith("member-statement-es-")
    assert Path(dl.value.path()).read_bytes().startswith(b"%PDF")
    ctx.close()


def test_an_auditor_searches_decisions_and_drills_down_to_a_disclosure(browser, world: World):
    ctx, page = _sign_in(browser, "state_audit")
    page.get_by_role("link", name="Decisions and disclosures: search by recipient, purpose, rule and date").click()
    page.get_by_label("Recipient (hub id, e.g. lhj_alameda)").fill("mcp_beta")
    page.get_by_role("button", name="Search").click()
    assert "PART2-2.31-WRITTEN-CONSENT" in page.inner_text("main")
    _accessible(page, "auditor-decisions")
    page.get_by_role("table").nth(1).get_by_role("link").first.click()
    assert "county_06013_bh:F-200" in page.inner_text("main") and "permitting" in page.inner_text("main")
    _accessible(page, "auditor-disclosure-detail")
    ctx.close()
