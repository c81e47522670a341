"""The HTML report as a person sees it, in headless Chromium, on the store the real demo
pipeline filled: verdict first, no console error, every chart drawn, hover values work; the
visible text has no snake_case header, raw JSON or scientific notation; axe-core finds no
serious accessibility violation; screenshots at 1280 and 390 px kept in test-artifacts/; the
English build and the A4 PDF."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ecodemo.dashboards.report import write_html_report, write_pdf_report
from tests.pipeline_rows import FilledStore

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium missing")
# axe-core (MPL-2.0) comes from npm at test time (`make test` runs `npm install axe-core`)
AXE = Path(os.environ.get("ECODEMO_AXE_JS", ROOT / "node_modules/axe-core/axe.min.js"))


def _chromium(tmp: Path, *args: str, size: str = "1280,2400") -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
           f"--window-size={size}", "--virtual-time-budget=8000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


class _Visible(HTMLParser):
    """Text a reader reads as words (scripts, styles and identifiers marked as <code> left
    out), the table headers, and the words in the page's language (proper names marked
    ``translate="no"``, such as a source's full site name, left out too)."""

    def __init__(self) -> None:
        super().__init__()
        self.skip = 0
        self.names: list[str] = []    # open tags, with 'name' for a translate="no" one
        self.text: list[str] = []
        self.words: list[str] = []
        self.headers: list[str] = []
        self._in_th = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.skip += tag in ("script", "style", "code")
        if tag not in ("br", "img", "input", "meta", "link", "hr", "wbr"):
            self.names.append("name" if ("translate", "no") in attrs else tag)
        if tag == "th":
            self._in_th = True
            self.headers.append("")

    def handle_endtag(self, tag: str) -> None:
        self.skip -= tag in ("script", "style", "code")
        while self.names and self.names.pop() not in (tag, "name"):
            pass
        self._in_th = self._in_th and tag != "th"

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.text.append(data)
            if "name" not in self.names:
                self.words.append(data)
            if self._in_th:
                self.headers[-1] += data


def unreadable(page: str) -> dict[str, list[str]]:
    """What a reader should never see: snake_case words, scientific notation, raw JSON."""
    v = _Visible()
    v.feed(page)
    text = " ".join(v.text)
    found = {
        "snake_case": re.findall(r"\b[A-Za-z]+_[A-Za-z0-9_]+\b", text),
        "scientific": re.findall(r"\d(?:[.,]\d+)?[eE][+-]?\d+\b", text),
        "json": re.findall(r"[{\[]\s*\"\w+\"\s*:", text),
        "headers": [h for h in v.headers if "_" in h or not h.strip()],
    }
    return {k: sorted(set(x))[:10] for k, x in found.items() if x}


# English words that are no French word: one in the French report's visible text is a
# sentence left untranslated (proper names are marked translate="no"; units and code apart)
ENGLISH = ("the", "of", "and", "with", "from", "which", "is", "are", "was", "were", "not",
           "by", "for", "to", "has", "have", "this", "that", "when", "only", "than", "into",
           "its", "been", "each", "their", "they", "runs")


def english_words(page: str) -> list[str]:
    """Where English shows in a French page: each English word with its context."""
    v = _Visible()
    v.feed(page)
    text = " ".join(" ".join(v.words).split())
    return sorted({text[max(0, m.start() - 40):m.end() + 40] for m in re.finditer(
        r"\b(?:" + "|".join(ENGLISH) + r")\b", text, re.IGNORECASE)})[:10]


def test_english_words_catches_what_it_should() -> None:
    assert english_words("<p>0 of 172 runs used a GPU</p>") != []
    assert english_words("<li>Vélo : error reduction from backtest</li>") != []
    # a proper name, an identifier and French that looks English are not sentences
    assert english_words('<td><span translate="no">Paris bike counter: Face to the '
                         'river</span></td><p><code>is_the_one</code> un an, or, on a</p>'
                         '<p>Estimée par CodeCarbon (TDP 8 W), 1 234 kWh</p>') == []


def test_unreadable_catches_what_it_should() -> None:
    bad = ('<table><tr><th>train_energy_kwh</th></tr><tr><td>3.45e-07</td></tr></table>'
           '<p>{"spike": 5}</p><script>var a_b = 1e-3;</script>')
    assert set(unreadable(bad)) == {"snake_case", "scientific", "json", "headers"}
    assert unreadable("<p>1\u202f234,5 kWh, 5 pics, 2 trous</p><th>Énergie</th>") == {}


def test_report_reads_as_a_person_sees_it(filled_store: FilledStore, tmp_path: Path) -> None:
    report = write_html_report(filled_store.settings, tmp_path / "report.html")
    text = report.read_text(encoding="utf-8")
    # nothing fetched: opens offline (the SVG namespace URI is an identifier, not a fetch)
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", text)
    assert "https://" not in text and "<script src" not in text and "<link" not in text
    # the verdict comes first, one card per kind with a balance, each saying what decides it
    sections = re.findall(r'<section id="([a-z]+)"', text)
    assert sections[:3] == ["verdict", "territory", "models"] and sections[-1] == "details"
    cards = re.findall(r'<article class="verdict-card" aria-labelledby="v-(\w+)"', text)
    assert sorted(cards) == sorted(filled_store.kinds)
    assert text.count("L'hypothèse qui décide") == len(cards)
    assert "rentable si au moins" in text and "ampoule LED de 10" in text
    assert unreadable(text) == {}
    assert english_words(text) == []   # French throughout, the specialists' details too
    assert 'class="untranslated"' not in text   # every table header has its words
    # short names shown, full names on hover
    assert 'title="Paris bike counter: 28 boulevard Diderot O-E' in text
    assert ">Vélos bd Diderot O-E<" in text
    assert ('<td><span translate="no">Paris bike counter: 28 boulevard Diderot O-E (site 28 '
            'boulevard Diderot, id 100007049)</span></td>') in text   # and in the sites' table
    n_charts = len(re.findall(r'class="chart" id="', text))
    assert n_charts >= 10

    run = _chromium(tmp_path, "--dump-dom", report.as_uri() + "#selftest")
    dom = run.stdout
    assert "<body" in dom, run.stderr[-2000:]
    errors = re.search(r'<pre id="report-errors">(.*?)</pre>', dom, re.S)
    assert errors is not None and errors.group(1).strip() == "", errors
    console = [ln for ln in run.stderr.splitlines()
               if "CONSOLE" in ln and ("error" in ln.lower() or "Uncaught" in ln)]
    assert not console, console
    drawn = re.search(r'data-charts-drawn="(\d+)"', dom)
    assert drawn and int(drawn.group(1)) == n_charts
    assert len(re.findall(r'data-drawn="1"', dom)) == n_charts
    assert len(re.findall(r"<svg", dom)) == n_charts  # every chart drew, none said "no data"
    assert 'data-selftest="ok"' in dom  # a hover on every chart showed its values
    # accuracy over time: one point per day per model (the replayed week), not one dot
    acc = re.search(r'<div class="chart" id="acc-0".*?</svg>', dom, re.S)
    assert acc and len(re.findall(r"<circle", acc.group(0))) >= 2 * 5
    assert unreadable(dom) == {}   # what the script drew (axis labels, legends) too

    ARTIFACTS.mkdir(exist_ok=True)
    for name, size in (("report-laptop.png", "1280,3000"), ("report-phone.png", "390,3000")):
        shot = tmp_path / name
        _chromium(tmp_path, f"--screenshot={shot}", report.as_uri(), size=size)
        assert shot.is_file() and shot.stat().st_size > 20_000
        shutil.copy(shot, ARTIFACTS / name)
    shutil.copy(report, ARTIFACTS / "report.html")


@pytest.mark.skipif(not AXE.is_file(), reason="axe-core missing: npm install axe-core "
                                              "(make test does)")
def test_report_has_no_serious_accessibility_violation(filled_store: FilledStore,
                                                       tmp_path: Path) -> None:
    report = write_html_report(filled_store.settings, tmp_path / "report.html")
    runner = ("<script>" + AXE.read_text(encoding="utf-8") + "</script><script>"
              "window.addEventListener('load',function(){axe.run(document,{resultTypes:"
              "['violations']}).then(function(r){var p=document.createElement('pre');"
              "p.id='axe-results';p.textContent=JSON.stringify(r.violations.map(function(v)"
              "{return {id:v.id,impact:v.impact,nodes:v.nodes.length,help:v.help};}));"
              "document.body.appendChild(p);});});</script></body>")
    page = tmp_path / "report-axe.html"
    page.write_text(report.read_text(encoding="utf-8").replace("</body>", runner),
                    encoding="utf-8")
    run = _chromium(tmp_path, "--dump-dom", page.as_uri())
    found = re.search(r'<pre id="axe-results">(.*?)</pre>', run.stdout, re.S)
    assert found, run.stderr[-2000:]
    import html

    violations = json.loads(html.unescape(found.group(1)))
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], serious


def test_report_in_english_and_as_pdf(filled_store: FilledStore, tmp_path: Path) -> None:
    en = write_html_report(filled_store.settings, tmp_path / "report-en.html", "en")
    text = en.read_text(encoding="utf-8")
    assert '<html lang="en">' in text and "The assumption that decides" in text
    assert "L'hypothèse" not in text and "Ce qu'il prévoit" not in text
    assert unreadable(text) == {} and 'class="untranslated"' not in text

    pdf = write_pdf_report(filled_store.settings, tmp_path / "report.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = re.findall(rb"/Type\s*/Page[^s]", data)
    assert len(pages) >= 4   # a page break between the sections
    box = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)", data)
    assert box and abs(float(box.group(1)) - 595.3) < 2 and abs(float(box.group(2)) - 841.9) < 2
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(pdf, ARTIFACTS / "report.pdf")
