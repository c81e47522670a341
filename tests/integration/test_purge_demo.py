"""``ecodemo db purge-demo``: the bundled snapshot and what was derived from it leave a store
that also holds a territory's own data; the territory's rows are all still there."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from ecodemo.config import Settings
from ecodemo.sensors.catalogue import load_catalogue, register_catalogue
from ecodemo.sensors.snapshot import ingest_snapshot_once
from ecodemo.snapshot import PURGED_TABLES, purge_snapshot
from ecodemo.store.ingest import ingest_csv
from tests.catalogues import TOWN_READINGS, TOWN_SENSOR, snapshot_only, town
from tests.integration.cli_helpers import cli_env, run_cli

SNAP_WIND = "rte-hauts-de-france-wind"


def _derived_rows(conn: psycopg.Connection) -> None:
    """What a demo run and a month of the town's own operation leave behind (one of each)."""
    conn.execute("""INSERT INTO models (model_id, kind, name, version, train_start, train_end)
                    VALUES ('wind-demo', 'wind', 'lgbm_small', 1, '2012-01-01', '2013-12-31'),
                           ('bike-demo', 'bike', 'lgbm_small', 1, '2020-09-01', '2021-09-09'),
                           ('bike-town', 'bike', 'lgbm_small', 2, '2026-03-02', '2026-03-15')""")
    conn.execute("""INSERT INTO model_choices (kind, chosen_name, model_id, tolerance, reason)
                    VALUES ('wind', 'lgbm_small', 'wind-demo', 0.02, 'demo'),
                           ('bike', 'lgbm_small', 'bike-town', 0.02, 'town')""")
    for sensor, model, issued in ((SNAP_WIND, "wind-demo", "2013-12-30"),
                                  (TOWN_SENSOR, "bike-town", "2026-03-15")):
        conn.execute("""INSERT INTO forecasts (sensor_id, model_id, issued_at, ts, horizon_h, p50)
                        VALUES (%s, %s, %s, %s::timestamptz + interval '1 hour', 1, 5)""",
                     (sensor, model, issued, issued))
    for kind, model, sensor, start, end in (
            ("wind", "wind-demo", SNAP_WIND, "2013-12-01", "2013-12-31"),
            ("bike", "bike-town", TOWN_SENSOR, "2026-03-09", "2026-03-15")):
        conn.execute("""INSERT INTO evaluations (source, kind, model_name, model_id, sensor_id,
                            horizon_h, period_start, period_end, n)
                        VALUES ('live', %s, 'lgbm_small', %s, %s, 24, %s, %s, 10)""",
                     (kind, model, sensor, start, end))
        conn.execute("""INSERT INTO balances (kind, model_id, period_start, period_end)
                        VALUES (%s, %s, %s, %s)""", (kind, model, start, end))
    conn.execute("INSERT INTO sensor_quality (sensor_id) VALUES (%s), (%s)",
                 (SNAP_WIND, TOWN_SENSOR))
    conn.execute("""INSERT INTO compute_runs (run_id, stage, model_id, started_at, details)
                    VALUES (gen_random_uuid(), 'train', 'bike-town', now(), '{}'),
                           (gen_random_uuid(), 'train', 'wind-demo', now(), '{}'),
                           (gen_random_uuid(), 'ingest', NULL, now(),
                            '{"file": "renewable_eco2mix.csv.gz"}')""")


def _ids(conn: psycopg.Connection, sql: str) -> list[object]:
    return [r[0] for r in conn.execute(sql)]


def test_purge_demo_keeps_only_the_territory(settings: Settings, db_url: str, tmp_path: Path,
                                             conn: psycopg.Connection) -> None:
    folder = town(tmp_path / "town")
    register_catalogue(conn, load_catalogue(folder / "catalogue.yaml"))
    own = ingest_csv(conn, folder / "drop" / "counts.csv")
    assert own.inserted == TOWN_READINGS
    demo = ingest_snapshot_once(settings)
    assert demo["inserted"] > 100_000
    _derived_rows(conn)

    env = cli_env(ECODEMO_DATABASE_URL=db_url, ECODEMO_STATE_DIR=str(tmp_path / "state"),
                  ECODEMO_SENSORS_DIR=str(folder))
    res = run_cli(["db", "purge-demo"], env)
    assert res.returncode == 0, res.stderr
    assert f"{demo['inserted']:,} readings" in res.stdout, res.stdout

    assert _ids(conn, "SELECT DISTINCT sensor_id FROM readings") == [TOWN_SENSOR]
    assert _ids(conn, "SELECT count(*) FROM readings") == [TOWN_READINGS]
    assert _ids(conn, "SELECT sensor_id FROM sensors") == [TOWN_SENSOR]
    assert _ids(conn, "SELECT site_id FROM sites") == [TOWN_SENSOR]
    assert _ids(conn, "SELECT count(*) FROM weather") == [0]
    assert _ids(conn, "SELECT model_id FROM models") == ["bike-town"]
    assert _ids(conn, "SELECT model_id FROM model_choices") == ["bike-town"]
    assert _ids(conn, "SELECT sensor_id FROM forecasts") == [TOWN_SENSOR]
    assert _ids(conn, "SELECT sensor_id FROM evaluations") == [TOWN_SENSOR]
    assert _ids(conn, "SELECT model_id FROM balances") == ["bike-town"]
    assert _ids(conn, "SELECT sensor_id FROM sensor_quality") == [TOWN_SENSOR]
    assert _ids(conn, "SELECT model_id FROM compute_runs") == ["bike-town"]
    assert _ids(conn, "SELECT count(*) FROM ingested_files WHERE path LIKE 'bundled%'") == [0]

    again = purge_snapshot(conn, keep_sensor_ids=[TOWN_SENSOR], keep_site_ids=[TOWN_SENSOR])
    assert again == dict.fromkeys(PURGED_TABLES, 0)
    # Purged, the snapshot can be brought back on purpose (its fingerprint went with it).
    assert ingest_snapshot_once(settings)["inserted"] == demo["inserted"]


def test_purge_demo_keeps_sensors_the_catalogue_declares(settings: Settings,
                                                         conn: psycopg.Connection) -> None:
    """With the shipped catalogue (same site ids as the snapshot), the sensors stay registered
    and only the snapshot's readings and what came from them go."""
    ingest_snapshot_once(settings)
    cat = load_catalogue()
    counts = purge_snapshot(conn, keep_sensor_ids=[s.sensor_id for s in cat.sensors],
                            keep_site_ids=[s.site_id for s in cat.sites])
    assert counts["readings"] > 100_000 and counts["sensors"] == counts["sites"] == 0
    assert _ids(conn, "SELECT count(*) FROM readings") == [0]
    assert SNAP_WIND in _ids(conn, "SELECT sensor_id FROM sensors")


def test_purge_demo_refuses_while_the_catalogue_enables_the_snapshot(
        db_url: str, tmp_path: Path) -> None:
    env = cli_env(ECODEMO_DATABASE_URL=db_url, ECODEMO_STATE_DIR=str(tmp_path / "state"),
                  ECODEMO_SENSORS_DIR=str(snapshot_only(tmp_path / "sensors")))
    res = run_cli(["db", "purge-demo"], env)
    assert res.returncode != 0
    assert res.stderr.strip().count("\n") == 0, res.stderr
    assert "source 'snapshot' still ingests the bundled snapshot" in res.stderr


@pytest.fixture(autouse=True)
def _no_sensors_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ECODEMO_SENSORS_DIR", raising=False)
