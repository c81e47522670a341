"""The bundled real data snapshot as a source: its sites, series and weather, ingested once
per content version (the ``snapshot`` connector; ``ecodemo demo`` ingests it every time).

It is demo data: a deployment ingests it only when its catalogue enables a source with the
``snapshot`` connector. Where it lives: :mod:`ecodemo.paths`; taking it out of a store again:
:mod:`ecodemo.snapshot`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ecodemo.config import Settings
from ecodemo.metering import track_run
from ecodemo.paths import SITES_FILE, snapshot_dir
from ecodemo.store import ingested_files, migrate
from ecodemo.store.connection import open_database
from ecodemo.store.ingest import IngestCounts, ingest_csv
from ecodemo.store.sites import register_sites_csv
from ecodemo.store.weather import ingest_weather_csv

log = logging.getLogger(__name__)
Echo = Callable[[str], Any]

# Series files of the snapshot, in ingestion order, and the weather station they pair with.
SERIES_FILES = ("renewable_eco2mix.csv.gz", "transport_bike.csv.gz", "transport_road.csv.gz")
WEATHER_FILE = "weather_paris_orly.csv"
#: ``ingested_files.path`` of the snapshot's fingerprint row starts with this.
FINGERPRINT_PREFIX = "bundled snapshot"


def ingest_snapshot(settings: Settings, echo: Echo = log.info, *,
                    measure: bool = False) -> dict[str, Any]:
    """Register the bundled sites and ingest the bundled series and weather (idempotent).

    With ``measure``, each file is one 'ingest' compute run (a file feeding one kind is charged
    to it; a shared file is split by the balance).
    """
    def measured(**kw: Any) -> Any:
        return track_run(settings, "ingest", **kw) if measure else nullcontext(None)

    db = open_database(settings)
    migrate.upgrade(db.url)
    folder = snapshot_dir()
    total = IngestCounts()
    out: dict[str, Any] = {}
    with db.connect(autocommit=True) as conn:
        out["sites"] = register_sites_csv(conn, folder / SITES_FILE)
        kind_of: dict[str, str] = dict(
            conn.execute("SELECT sensor_id, kind FROM sensors").fetchall())
        for name in SERIES_FILES:
            kinds = _kinds_in_file(folder / name, kind_of) if measure else []
            with measured(sensor_kind=kinds[0] if len(kinds) == 1 else None,
                          details={"file": name, "kinds": kinds}) as run:
                counts = ingest_csv(conn, folder / name, batch_rows=settings.ingest_batch_rows)
                if run is not None:
                    run.details.update(counts.as_dict())
            echo(f"  {name}: {counts.summary()}")
            total.add(counts)
        with measured(details={"file": WEATHER_FILE}):
            out["weather_rows_changed"] = ingest_weather_csv(conn, folder / WEATHER_FILE)
    return {**out, **total.as_dict()}


def ingest_snapshot_once(settings: Settings) -> dict[str, Any]:
    """:func:`ingest_snapshot` once per content version (a fingerprint in ``ingested_files``):
    later calls return ``{"skipped": ...}`` at once, so an hourly schedule does not re-read it."""
    folder = snapshot_dir()
    fingerprint = folder_fingerprint(folder, [SITES_FILE, WEATHER_FILE, *SERIES_FILES])
    db = open_database(settings)
    migrate.upgrade(db.url)
    with db.connect(autocommit=True) as conn:
        done = conn.execute("SELECT ingested_at FROM ingested_files WHERE content_sha256 = %s",
                            (fingerprint,)).fetchone()
    if done is not None:
        return {"skipped": f"bundled snapshot {fingerprint[:12]} already ingested "
                           f"at {done[0].isoformat()}"}
    counts = ingest_snapshot(settings)
    with db.connect(autocommit=True) as conn:
        ingested_files.record_file(conn, fingerprint, f"{FINGERPRINT_PREFIX} {folder}", counts)
    return counts


def folder_fingerprint(folder: Path, names: list[str]) -> str:
    """SHA-256 over the named files' names and bytes (identifies a bundled snapshot version)."""
    h = hashlib.sha256()
    for name in sorted(names):
        h.update(name.encode())
        with open(folder / name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _kinds_in_file(path: Path, kind_of: dict[str, str]) -> list[str]:
    ids = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        include_columns=["site_id"])).column("site_id")
    return sorted({kind_of[s] for s in pc.unique(ids).to_pylist() if s in kind_of})
