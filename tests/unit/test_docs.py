"""The reference in docs/ builds strictly with MkDocs, lists every page, and the README stays a
front door (at most 250 lines) whose links to docs/ resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site"),
         "--config-file", str(REPO / "mkdocs.yml")],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "architecture" / "index.html").is_file()


def test_every_page_is_in_the_nav() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    in_nav = {page for entry in config["nav"] for page in entry.values()}
    pages = {p.name for p in (REPO / "docs").glob("*.md")}
    assert pages == in_nav, f"not in the nav: {sorted(pages - in_nav)}; " \
                            f"missing: {sorted(in_nav - pages)}"


def test_readme_is_a_front_door_whose_links_resolve() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "make demo" in text and "make test" in text
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert links
    for link in links:
        assert (REPO / link).is_file(), link
