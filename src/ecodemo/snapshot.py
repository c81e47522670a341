"""The bundled real data snapshot: where it lives and how it is ingested.

Installed from a wheel, the snapshot ships inside the package as ``ecodemo/_sensors``; from a
checkout (editable install) it is the repository's top-level ``sensors/`` folder. It is demo
data: ``ecodemo demo`` ingests it, and a deployment only when its catalogue enables a source
with the ``snapshot`` connector.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from ecodemo.config import Settings
from ecodemo.errors import ConfigError
from ecodemo.store import migrate
from ecodemo.store.connection import open_database
from ecodemo.store.ingest import IngestCounts, ingest_csv
from ecodemo.store.sites import register_sites_csv
from ecodemo.store.weather import ingest_weather_csv

log = logging.getLogger(__name__)
Echo = Callable[[str], Any]


def sensors_dir() -> Path:
    """The folder holding the sensor catalogue and ``snapshot/``.

    ``ECODEMO_SENSORS_DIR`` wins (a deployment mounts its own catalogue there, e.g. the compose
    file's ./sensors); then a repository checkout; then the copy bundled in the wheel.
    """
    here = Path(__file__).resolve().parent
    override = os.environ.get("ECODEMO_SENSORS_DIR")
    if override:
        if not (Path(override) / "catalogue.yaml").is_file():
            raise ConfigError(f"ECODEMO_SENSORS_DIR={override}: no catalogue.yaml there")
        return Path(override)
    for candidate in (here.parents[1] / "sensors", Path.cwd() / "sensors", here / "_sensors"):
        if (candidate / "snapshot" / "sites.csv").is_file():
            return candidate
    raise ConfigError("bundled snapshot not found (expected sensors/snapshot/sites.csv)")


def snapshot_dir() -> Path:
    return sensors_dir() / "snapshot"


# Series files of the snapshot, in ingestion order, and the weather station they pair with.
SERIES_FILES = ("renewable_eco2mix.csv.gz", "transport_bike.csv.gz", "transport_road.csv.gz")
WEATHER_FILE = "weather_paris_orly.csv"
SITES_FILE = "sites.csv"
#: ``ingested_files.path`` of the snapshot's fingerprint row starts with this.
FINGERPRINT_PREFIX = "bundled snapshot"


def ingest_snapshot(settings: Settings, echo: Echo = log.info, *,
                    measure: bool = False) -> dict[str, Any]:
    """Register the bundled sites and ingest the bundled series and weather (idempotent).

    With ``measure``, each file is one 'ingest' compute run (a file feeding one kind is charged
    to it; a shared file is split by the balance).
    """
    from ecodemo.metering import track_run

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
    from ecodemo.scheduling import folder_fingerprint

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
        conn.execute(
            "INSERT INTO ingested_files (content_sha256, path, counts) VALUES (%s, %s, %s::jsonb)"
            " ON CONFLICT (content_sha256) DO NOTHING",
            (fingerprint, f"{FINGERPRINT_PREFIX} {folder}", json.dumps(counts, default=str)),
        )
    return counts


def _kinds_in_file(path: Path, kind_of: dict[str, str]) -> list[str]:
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    ids = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        include_columns=["site_id"])).column("site_id")
    return sorted({kind_of[s] for s in pc.unique(ids).to_pylist() if s in kind_of})
