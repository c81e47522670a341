"""Stage functions: what DAG tasks and CLI commands call. Each takes an explicit Settings.

Keep these thin: they open the store, call the library, and return plain dicts that Airflow can
pass between tasks (XCom) and the CLI can print.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecodemo.config import Settings
from ecodemo.snapshot import SERIES_FILES, SITES_FILE, WEATHER_FILE, snapshot_dir
from ecodemo.store import migrate
from ecodemo.store.connection import open_database
from ecodemo.store.ingest import IngestCounts, ingest_csv
from ecodemo.store.sites import register_sites_csv
from ecodemo.store.weather import ingest_weather_csv

log = logging.getLogger(__name__)
Echo = Callable[[str], Any]


def upgrade_db(settings: Settings) -> list[str]:
    db = open_database(settings)
    return [f"{m.version:03d}_{m.name} ({m.variant})" for m in migrate.upgrade(db.url)]


def ingest_snapshot(settings: Settings, echo: Echo = log.info) -> dict[str, Any]:
    """Register the bundled sites and ingest the bundled series and weather (idempotent)."""
    db = open_database(settings)
    migrate.upgrade(db.url)
    folder = snapshot_dir()
    total = IngestCounts()
    with db.connect(autocommit=True) as conn:
        n_sites = register_sites_csv(conn, folder / SITES_FILE)
        for name in SERIES_FILES:
            counts = ingest_csv(conn, folder / name, batch_rows=settings.ingest_batch_rows)
            echo(f"  {name}: {counts.summary()}")
            total.add(counts)
        n_weather = ingest_weather_csv(conn, folder / WEATHER_FILE)
    return {"sites": n_sites, "weather_rows_changed": n_weather, **total.as_dict()}


# --- stage functions implemented in the area packages (imported lazily: DAG files stay light) ---
# Contract (each takes an explicit Settings and returns a JSON-able dict):
#   ecodemo.sensors.stages.ingest_source(settings, name, start=None, end=None)
#   ecodemo.sensors.stages.ingest_all(settings) / list_sources(settings) / check_sensors(settings)
#   ecodemo.models.stages.run_ladder(settings, kind, horizon_h=24)   backtest + choice (tracked)
#   ecodemo.models.stages.train(settings, kind, promote=True)         registry (tracked)
#   ecodemo.models.stages.forecast(settings, kind, issued_at=None, horizon_h=48)   (tracked)
#   ecodemo.models.stages.kinds_with_data(settings) -> list[str]
#   ecodemo.energy.stages.evaluate(settings, period_start=None, period_end=None)   (tracked)
#   ecodemo.dashboards.stages.publish(settings, out_dir=None)


def store_summary(settings: Settings) -> list[dict[str, Any]]:
    """Per kind: sensors, readings and time span held in the store."""
    db = open_database(settings)
    with db.connect() as conn:
        rows = conn.execute(
            """SELECT s.kind, count(DISTINCT s.sensor_id), count(r.*), min(r.ts), max(r.ts)
               FROM sensors s LEFT JOIN readings r USING (sensor_id)
               GROUP BY s.kind ORDER BY s.kind"""
        ).fetchall()
    return [
        {"kind": k, "sensors": n_s, "readings": n_r,
         "first": a.isoformat() if a else None, "last": b.isoformat() if b else None}
        for k, n_s, n_r, a, b in rows
    ]


def run_demo(settings: Settings, workdir: Path, echo: Echo = print) -> Path:
    """The demo: ingest the bundled snapshot and summarise what the store holds."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = open_database(settings)
    echo(f"database: {db.label}")
    echo("1/2 ingesting the bundled real snapshot")
    ingested = ingest_snapshot(settings, echo)
    echo("2/2 summarising the store")
    kinds = store_summary(settings)
    for k in kinds:
        echo(f"  {k['kind']}: {k['sensors']} sensor(s), {k['readings']:,} readings "
             f"({k['first']} -> {k['last']})")
    summary = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": db.label,
        "ingested": ingested,
        "store": kinds,
        "targets": [],
    }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return workdir
