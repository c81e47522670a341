"""Taking the bundled demo snapshot, and what was derived from it, out of a store
(``ecodemo db purge-demo``).

It spans every area (readings, models, balances, compute runs), so it sits above them, beside
the demo and the pipeline; ingesting the snapshot is a connector, :mod:`ecodemo.sensors.snapshot`.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from ecodemo import metering
from ecodemo.models import registry
from ecodemo.paths import snapshot_dir
from ecodemo.sensors.snapshot import FINGERPRINT_PREFIX, SERIES_FILES, SITES_FILE, WEATHER_FILE
from ecodemo.store import (
    balances,
    evaluations,
    forecasts,
    ingested_files,
    sensor_quality,
    sites,
    weather,
)
from ecodemo.store.ingest import delete_listed_readings, delete_quarantined, refresh_hourly
from ecodemo.store.sites import read_sites_csv

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
    # Each table's rows go through its one writer.
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
