"""Sensor catalogues written for a test: the demo snapshot only, or a deployment's own territory.

Each function writes ``catalogue.yaml`` into a folder to use as ``ECODEMO_SENSORS_DIR``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

#: A catalogue whose only source is the bundled demo snapshot, enabled explicitly.
SNAPSHOT_ONLY = """version: 1
sources:
  snapshot:
    connector: snapshot
    description: the bundled demo snapshot, enabled on purpose
"""

#: A territory of its own: one drop-folder source and one bike counter.
TOWN = """version: 1
sources:
  town-drop:
    connector: files
    description: the town's exports, dropped as long-format CSV
    params:
      path: drop/*.csv
sites:
  - site_id: town-bike-1
    name: Town bike counter, main bridge
    kind: bike
    latitude: 45.19
    longitude: 5.72
    timezone: Europe/Paris
    sensors:
      - unit: bicycles/h
        resolution: PT1H
        source: town-drop
"""
TOWN_SENSOR = "town-bike-1"
TOWN_READINGS = 336  # two weeks of hourly counts


def snapshot_only(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "catalogue.yaml").write_text(SNAPSHOT_ONLY, encoding="utf-8")
    return folder


def town(folder: Path) -> Path:
    """The town's catalogue and a drop folder holding :data:`TOWN_READINGS` hourly readings."""
    (folder / "drop").mkdir(parents=True, exist_ok=True)
    (folder / "catalogue.yaml").write_text(TOWN, encoding="utf-8")
    start = datetime(2026, 3, 2, tzinfo=UTC)
    rows = ["timestamp,site_id,value,unit"]
    for h in range(TOWN_READINGS):
        ts = start + timedelta(hours=h)
        rows.append(f"{ts.isoformat()},{TOWN_SENSOR},{(h * 7) % 90 + 3},bicycles/h")
    (folder / "drop" / "counts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder
