"""Open an LHJ package's report.html in Debian's headless Chromium (Playwright) and read what a
reader sees: console errors, each chart's legend and mark colours, the order of bars, the
suppressed-cell total; saves a full-page screenshot under var/artifacts/ (git-ignored; CI keeps it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "artifacts" / "report"

# Per chart (figure): legend label -> symbol fill; per bar: its series, stratum label, fill and
# its top on the page (bars of one panel are read top to bottom).
_READ = """() => Array.from(document.querySelectorAll('figure')).map(fig => {
  const field = (label, name) => {
    const m = (label || '').match(new RegExp('(?:^|; )' + name + ': ([^;]*)'));
    return m ? m[1] : null;
  };
  const syms = Array.from(fig.querySelectorAll('g.role-legend-symbol path'));
  const labs = Array.from(fig.querySelectorAll('g.role-legend-label text'));
  const legend = {};
  syms.forEach((s, i) => { if (labs[i]) legend[labs[i].textContent] = (s.getAttribute('fill') || '').toLowerCase(); });
  const bars = Array.from(fig.querySelectorAll('path[aria-roledescription="bar"]')).map(b => ({
    series: field(b.getAttribute('aria-label'), 'series'),
    label: field(b.getAttribute('aria-label'), 'label'),
    fill: (b.getAttribute('fill') || '').toLowerCase()}));
  const panels = Array.from(fig.querySelectorAll('g[class*="concat_"][class$="_group"]')).map(g => {
    const title = g.querySelector('g.role-title-text text');
    const cats = Array.from(g.querySelectorAll('g.role-axis-label text'))
      .filter(t => !t.textContent.endsWith('%'))
      .map(t => ({text: t.textContent, top: t.getBoundingClientRect().top}))
      .sort((a, b) => a.top - b.top).map(t => t.text);
    const ticks = Array.from(g.querySelectorAll('g.role-axis-label text'))
      .filter(t => t.textContent.endsWith('%')).map(t => t.textContent);
    return {title: title ? title.textContent : '', categories: cats, ticks};
  });
  const lines = Array.from(fig.querySelectorAll('path[aria-roledescription="line mark"]')).map(l => ({
    series: field(l.getAttribute('aria-label'), 'series'), stroke: (l.getAttribute('stroke') || '').toLowerCase(),
    d: l.getAttribute('d')}));
  return {legend, bars, lines, panels, svg: fig.querySelectorAll('svg').length, text: fig.textContent};
})"""


@dataclass
class Seen:
    console_errors: list[str] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)
    suppressed_total: str = ""
    text: str = ""
    screenshot: Path | None = None


def open_report(path: Path, name: str) -> Seen:
    """Render ``path`` in Chromium and return what was seen (screenshot saved as ``name``.png)."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian chromium is needed for the report test (make test installs it)"
    seen = Seen()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: seen.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: seen.console_errors.append(str(e)))
            page.on("requestfailed", lambda r: seen.console_errors.append(f"request failed: {r.url}"))
            page.goto(path.resolve().as_uri(), wait_until="load")
            seen.charts = page.evaluate(_READ)
            seen.suppressed_total = page.inner_text("#suppressed-total")
            seen.text = page.inner_text("body")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            seen.screenshot = ARTIFACTS / f"{name}.png"
            page.screenshot(path=str(seen.screenshot), full_page=True)
        finally:
            browser.close()
    return seen
