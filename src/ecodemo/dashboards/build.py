"""Build the three dashboards as deterministic JSON (stable uids, sorted keys, ids in order).

The committed files in the top-level ``dashboards/`` folder are the French build; a test
rebuilds them and fails when they are stale (``ecodemo dashboards build`` refreshes them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from ecodemo.dashboards import frugality, models_pipeline, territory
from ecodemo.dashboards.labels import Lang

# file name -> builder; the uid is fixed inside each builder module.
DASHBOARDS: dict[str, Callable[[Lang], dash.Dashboard]] = {
    "ecodemo-territory.json": territory.build,
    "ecodemo-models.json": models_pipeline.build,
    "ecodemo-frugality.json": frugality.build,
}


def dashboard_dict(builder: Callable[[Lang], dash.Dashboard], lang: Lang) -> dict[str, Any]:
    """One dashboard as plain JSON data, panel ids numbered 1..n in layout order."""
    data: dict[str, Any] = json.loads(json.dumps(builder(lang).build(), cls=JSONEncoder))
    for i, panel in enumerate(data.get("panels", []), start=1):
        panel["id"] = i
    return data


def build_all(lang: Lang = "fr") -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON data."""
    return {name: dashboard_dict(builder, lang) for name, builder in DASHBOARDS.items()}


def render(data: dict[str, Any]) -> str:
    """Deterministic text: sorted keys, two-space indent, UTF-8 kept, final newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_dashboards(out_dir: Path, lang: Lang = "fr") -> list[Path]:
    """Write the three dashboards into ``out_dir``; only files whose text changed are touched."""
    return [path for path, _ in sync_dashboards(out_dir, lang)]


def sync_dashboards(out_dir: Path, lang: Lang = "fr") -> list[tuple[Path, bool]]:
    """Write the three dashboards into ``out_dir``: (path, changed) per file.

    Safe for a folder a running Grafana polls: each file is written next to its target under
    a name Grafana ignores (not ``*.json``), made world-readable (Grafana runs as another
    user) and renamed over the target in one step, so Grafana never reads half a file. An
    unchanged file is not touched (its mtime stays, Grafana does not re-import it).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    out: list[tuple[Path, bool]] = []
    for name, data in build_all(lang).items():
        path = out_dir / name
        text = render(data)
        changed = not path.is_file() or path.read_text(encoding="utf-8") != text
        if changed:
            tmp = out_dir / f".{name}.tmp"
            tmp.write_text(text, encoding="utf-8")
            tmp.chmod(0o644)
            os.replace(tmp, path)
        out.append((path, changed))
    return out


def repo_dashboards_dir() -> Path | None:
    """The checkout's top-level ``dashboards/`` folder, when running from a checkout."""
    candidate = Path(__file__).resolve().parents[3] / "dashboards"
    return candidate if candidate.is_dir() else None
