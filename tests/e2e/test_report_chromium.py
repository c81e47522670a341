"""The HTML report, written from a pipeline-shaped store, opened in headless Chromium: no
console errors, every chart drawn, hover values work; screenshots kept in test-artifacts/."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ecodemo.dashboards.report import write_html_report
from tests.pipeline_rows import FilledStore

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium missing")


def _chromium(tmp: Path, *args: str, size: str = "1280,2400") -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           f"--window-size={size}", "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_report_renders_without_errors(filled_store: FilledStore,
                                       tmp_path: Path) -> None:
    report = write_html_report(filled_store.settings, tmp_path / "report.html")
    text = report.read_text(encoding="utf-8")
    # nothing fetched: opens offline (the SVG namespace URI is an identifier, not a fetch)
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", text)
    assert "https://" not in text and "<script src" not in text and "<link" not in text
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
    assert "Sur les 30 derniers jours" in dom and "kWh" in dom

    ARTIFACTS.mkdir(exist_ok=True)
    for name, size in (("report-laptop.png", "1280,2400"), ("report-phone.png", "390,2400")):
        shot = tmp_path / name
        _chromium(tmp_path, f"--screenshot={shot}", report.as_uri(), size=size)
        assert shot.is_file() and shot.stat().st_size > 20_000
        shutil.copy(shot, ARTIFACTS / name)
    shutil.copy(report, ARTIFACTS / "report.html")
