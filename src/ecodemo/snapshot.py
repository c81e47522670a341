"""The bundled real data snapshot: where it lives and how it is ingested.

Installed from a wheel, the snapshot ships inside the package as ``ecodemo/_sensors``; from a
checkout (editable install) it is the repository's top-level ``sensors/`` folder. It is demo
data: ``ecodemo demo`` ingests it, and a deployment only when its catalogue enables a source
with the ``snapshot`` connector.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from ecodemo import metering
from ecodemo.config import Settings
from ecodemo.errors import ConfigError
from ecodemo.store import (
    balances,
    evaluations,
    forecasts,
    ingested_files,
    migrate,
    sensor_quality,
    sites,
    weather,
)
from ecodemo.store.connection import open_database
from ecodemo.store.ingest import (
    IngestCounts,
    delete_listed_readings,
    delete_quarantined,
    ingest_csv,
    refresh_hourly,
)
from ecodemo.store.sites import read_sites_csv, register_sites_csv
from ecodemo.store.weather import ingest_weather_csv

log = logging.getLogger(__name__)
Echo = Callable[[str], Any]


def _bundled_dir() -> Path:
    """The sensors folder shipped with ecodemo: a repository checkout, then the wheel's copy."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[1] / "sensors", Path.cwd() / "sensors", here / "_sensors"):
        if (candidate / "snapshot" / SITES_FILE).is_file():
            return candidate
    raise ConfigError("bundled snapshot not found (expected sensors/snapshot/sites.csv)")


def sensors_dir() -> Path:
    """The folder holding the sensor catalogue.

    ``ECODEMO_SENSORS_DIR`` wins (a deployment mounts its own catalogue there, e.g. the compose
    file's ./sensors); then a repository checkout; then the copy bundled in the wheel.
    """
    override = os.environ.get("ECODEMO_SENSORS_DIR")
    if override:
        if not (Path(override) / "catalogue.yaml").is_file():
            raise ConfigError(f"ECODEMO_SENSORS_DIR={override}: no catalogue.yaml there")
        return Path(override)
    return _bundled_dir()


def snapshot_dir() -> Path:
    """The bundled snapshot: ``ECODEMO_SENSORS_DIR/snapshot`` when that folder has one, else the
    copy shipped with ecodemo (so ``ecodemo demo`` runs beside a deployment's own catalogue)."""
    override = os.environ.get("ECODEMO_SENSORS_DIR")
    if override and (Path(override) / "snapshot" / SITES_FILE).is_file():
        return Path(override) / "snapshot"
    return _bundled_dir() / "snapshot"


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
        ingested_files.record_file(conn, fingerprint, f"{FINGERPRINT_PREFIX} {folder}", counts)
    return counts


def _kinds_in_file(path: Path, kind_of: dict[str, str]) -> list[str]:
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    ids = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        include_columns=["site_id"])).column("site_id")
    return sorted({kind_of[s] for s in pc.unique(ids).to_pylist() if s in kind_of})


# --------------------------------------------------------------------------- purge

#: Tables ``purge_snapshot`` deletes from, in its order (each count is in its result).
PURGED_TABLES = ("forecasts", "evaluations", "balances", "model_choices", "compute_runs",
                 "models", "sensor_quality", "quarantine", "readings", "weather", "sensors",
                 "sites", "ingested_files")


def _load_snapshot_keys(conn: psycopg.Connection, folder: Path) -> None:
    """Temp tables of the snapshot's reading and weather keys (COPY of the files as they are)."""
    conn.execute("CREATE TEMP TABLE _snap_rows (ts timestamptz, sensor_id text, value text, "
                 "unit text) ON COMMIT DROP")
    for name in SERIES_FILES:
        with gzip.open(folder / name, "rb") as fh, conn.cursor().copy(
                "COPY _snap_rows FROM STDIN (FORMAT csv, HEADER true)") as cp:
            while chunk := fh.read(1 << 20):
                cp.write(chunk)
    conn.execute("CREATE TEMP TABLE _snap_weather (ts timestamptz, station_id text) "
                 "ON COMMIT DROP")
    observed = pacsv.read_csv(folder / WEATHER_FILE, convert_options=pacsv.ConvertOptions(
        include_columns=["timestamp", "station_id"],
        column_types={"timestamp": pa.string(), "station_id": pa.string()}))
    with conn.cursor().copy("COPY _snap_weather FROM STDIN") as cp:
        for ts, station in zip(*(observed.column(c).to_pylist()
                                 for c in ("timestamp", "station_id")), strict=True):
            cp.write_row((ts, station))
    conn.execute("ANALYZE _snap_rows")


def purge_snapshot(conn: psycopg.Connection, *, keep_sensor_ids: Iterable[str] = (),
                   keep_site_ids: Iterable[str] = ()) -> dict[str, int]:
    """Take the bundled snapshot, and what was derived from it, out of a store. One transaction;
    running it again deletes nothing.

    Deleted: the readings and weather rows whose keys are in the snapshot's files; the
    snapshot's sensors that hold no other reading and are not kept (``keep_*``: the
    deployment's catalogue), with their forecasts, evaluations and quality summaries, and their
    sites once empty; for a kept sensor, the forecasts issued within the snapshot's period.
    Per kind: the models whose training window overlaps the snapshot's period of that kind (all
    the kind's models when none of its sensors is left), with their forecasts, choices,
    evaluations, balances and compute runs; evaluations and balances over that period; the
    snapshot's ingest runs, quarantined rows and fingerprint. Nothing else is touched.
    Returns rows deleted per table (:data:`PURGED_TABLES`).
    """
    folder = snapshot_dir()
    site_ids = [s.site_id for s in read_sites_csv(folder / SITES_FILE)]
    keep = sorted(set(keep_sensor_ids))
    out: dict[str, int] = {}
    # Each table's rows go through its one writer. The registry imports LightGBM: only a purge
    # needs it, not every importer of this module (the sensor catalogue is one).
    from ecodemo.models import registry

    with conn.transaction():
        _load_snapshot_keys(conn, folder)
        conn.execute("""CREATE TEMP TABLE _snap_span ON COMMIT DROP AS
                        SELECT s.sensor_id, s.kind, min(r.ts) AS lo, max(r.ts) AS hi
                        FROM _snap_rows r JOIN sensors s USING (sensor_id) GROUP BY 1, 2""")
        conn.execute("""CREATE TEMP TABLE _snap_kind ON COMMIT DROP AS
                        SELECT kind, min(lo) AS lo, max(hi) AS hi FROM _snap_span GROUP BY 1""")
        sensor_periods = conn.execute("SELECT sensor_id, lo, hi FROM _snap_span").fetchall()
        kind_periods = conn.execute("SELECT kind, lo, hi FROM _snap_kind").fetchall()
        snap_sensors = [r[0] for r in conn.execute(
            "SELECT sensor_id FROM sensors WHERE site_id = ANY(%s) "
            "UNION SELECT sensor_id FROM _snap_span ORDER BY 1", (site_ids,))]
        out["readings"] = delete_listed_readings(conn, "_snap_rows")
        gone = [r[0] for r in conn.execute(
            """SELECT s FROM unnest(%s::text[]) AS s WHERE s <> ALL(%s::text[])
               AND NOT EXISTS (SELECT 1 FROM readings r WHERE r.sensor_id = s)""",
            (snap_sensors, keep))]
        gone_kinds = [r[0] for r in conn.execute(
            """SELECT DISTINCT kind FROM sensors WHERE sensor_id = ANY(%(gone)s) AND kind NOT IN
               (SELECT kind FROM sensors WHERE sensor_id <> ALL(%(gone)s))""", {"gone": gone})]
        models = [r[0] for r in conn.execute(
            """SELECT m.model_id FROM models m LEFT JOIN _snap_kind k USING (kind)
               WHERE m.kind = ANY(%s) OR (m.train_start <= k.hi AND m.train_end >= k.lo)""",
            (gone_kinds,))]
        files = [*SERIES_FILES, WEATHER_FILE]
        out["forecasts"] = forecasts.delete_forecasts(
            conn, model_ids=models, sensor_ids=gone, issued_within=sensor_periods)
        out["evaluations"] = evaluations.delete_evaluations(
            conn, model_ids=models, sensor_ids=gone, kinds=gone_kinds, kind_periods=kind_periods)
        out["balances"] = balances.delete_balances(
            conn, model_ids=models, kinds=gone_kinds, kind_periods=kind_periods)
        out["model_choices"] = registry.delete_choices(conn, models, gone_kinds)
        out["compute_runs"] = metering.delete_runs(conn, model_ids=models, kinds=gone_kinds,
                                                   ingest_files=files)
        out["models"] = registry.delete_models(conn, models)
        out["sensor_quality"] = sensor_quality.delete_summaries(conn, snap_sensors)
        out["quarantine"] = delete_quarantined(conn, [f"%/snapshot/{f}" for f in files])
        out["weather"] = weather.delete_listed_observed(conn, "_snap_weather")
        out["sensors"] = sites.delete_sensors(conn, gone)
        out["sites"] = sites.delete_empty_sites(conn, site_ids, sorted(set(keep_site_ids)))
        out["ingested_files"] = ingested_files.delete_paths_like(conn, f"{FINGERPRINT_PREFIX} %")
    refresh_hourly(conn)
    return {t: out.get(t, 0) for t in PURGED_TABLES}
