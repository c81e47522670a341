"""Print the HTML report to an A4 PDF with headless Chromium (charts are drawn by the page's
own script before printing; page size and breaks come from the report's print CSS)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ecodemo.errors import ConfigError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 120


def find_browser() -> str:
    """The Chromium executable; a one-line ConfigError saying how to install it if absent."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError("--format pdf needs headless Chromium, which is not installed "
                      "(Debian/Ubuntu: apt-get install chromium)")


def print_pdf(page: Path, out: Path) -> Path:
    """Print ``page`` (a local HTML file) to ``out``; returns ``out``."""
    browser = find_browser()
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ecodemo-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", "--no-pdf-header-footer",
               "--virtual-time-budget=10000", f"--print-to-pdf={out}", page.resolve().as_uri()]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S,
                                 check=False)
        except subprocess.TimeoutExpired:
            raise ConfigError(f"Chromium did not print {out.name} within {TIMEOUT_S} s") from None
    if not out.is_file() or out.stat().st_size == 0:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(f"Chromium failed to print the PDF (exit {run.returncode}): {last}")
    return out
