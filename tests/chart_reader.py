"""Read a published HTML page's Vega charts in Debian's headless Chromium (Playwright), as a reader
sees them: one reader for every report test (LHJ reports, ECM dashboards), so the legend/mark logic
is written once. Import as ``from chart_reader import browse, read_charts``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

# Per chart (figure): its caption; legend label -> symbol colour (the fill, or the stroke of a line
# symbol, whose fill is transparent); per bar its series, stratum label and fill; per line mark its
# series, stroke and path; per concatenated panel its title, categories top to bottom and % ticks.
# Vega's SVG names a mark's fields in its aria-label ("series: X; label: Y").
_READ = """() => Array.from(document.querySelectorAll('figure')).map(fig => {
  const field = (label, name) => {
    const m = (label || '').match(new RegExp('(?:^|; )' + name + ': ([^;]*)'));
    return m ? m[1] : null;
  };
  const paint = (el, attr) => {
    const v = (el.getAttribute(attr) || '').toLowerCase();
    return (v === 'none' || v === 'transparent') ? '' : v;
  };
  const syms = Array.from(fig.querySelectorAll('g.role-legend-symbol path'));
  const labs = Array.from(fig.querySelectorAll('g.role-legend-label text'));
  const legend = {};
  syms.forEach((s, i) => { if (labs[i]) legend[labs[i].textContent] = paint(s, 'fill') || paint(s, 'stroke'); });
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
  const caption = fig.querySelector('figcaption');
  return {caption: caption ? caption.textContent : '', legend, bars, lines, panels,
          svg: fig.querySelectorAll('svg').length, text: fig.textContent};
})"""


@contextmanager
def browse(path: Path) -> Iterator[tuple[Page, list[str]]]:
    """``path`` loaded in headless Chromium: (the page, the console errors, failed requests and page
    errors seen so far, a list that keeps filling while the page is open)."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian chromium is needed for the report tests (make test installs it)"
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            page.goto(path.resolve().as_uri(), wait_until="load")
            yield page, errors
        finally:
            browser.close()


def read_charts(page: Page) -> list[dict[str, Any]]:
    """Every chart of the page as :data:`_READ` describes it."""
    charts: list[dict[str, Any]] = page.evaluate(_READ)
    return charts
