"""The CLI runs each connector against the local test server (subprocess, real database)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO
from tests.sensors.conftest import catalogue_for


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ECODEMO_DATABASE_URL": db_url,
           "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", "from ecodemo.cli import main; main()",
                           *args], capture_output=True, text=True, env=env, timeout=300)


def test_ingest_commands_and_rerun(conn, db_url, server, tmp_path) -> None:
    cat = catalogue_for(server, tmp_path)
    c = str(cat.path)
    r = _cli(db_url, "ingest", "opendatasoft", "paris-bike", "--start", "2024-09-02",
             "--catalogue", c)
    assert r.returncode == 0, r.stderr
    assert "paris-bike: 48 read, 48 inserted" in r.stdout
    r = _cli(db_url, "ingest", "opendatasoft", "paris-bike", "--start", "2024-09-02",
             "--catalogue", c)
    assert "48 read, 0 inserted, 0 updated, 48 unchanged" in r.stdout
    r = _cli(db_url, "ingest", "opendatasoft", "open-meteo", "--catalogue", c)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "uses the open_meteo connector, not opendatasoft" in r.stderr
    r = _cli(db_url, "ingest", "simulate", "--start", "2024-06-01", "--end", "2024-06-02",
             "--catalogue", c)
    assert r.returncode == 0 and "96 inserted" in r.stdout and "disabled" in r.stdout
    n = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert n == (48 + 96,)


def test_ingest_all_one_failing_source_others_carry_on(conn, db_url, server, server_state,
                                                       tmp_path) -> None:
    del server_state.datasets["comptages-routiers-permanents"]  # the portal lost a dataset
    cat = catalogue_for(server, tmp_path, **{"paris-road": {"retries": 0}})
    r = _cli(db_url, "ingest", "all", "--start", "2024-09-02", "--catalogue", str(cat.path))
    assert r.returncode == 5, r.stdout + r.stderr
    failed = [line for line in r.stdout.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith("paris-road: FAILED: HTTP 404")
    assert "paris-bike: 48 read, 48 inserted" in r.stdout
    assert "odre-eco2mix-national-co2: 88 read, 88 written to grid_intensity" in r.stdout
    assert "iot-gateway" not in r.stdout  # disabled in the catalogue
    assert "bundled-snapshot" not in r.stdout  # demo data: disabled in the shipped catalogue
    assert "1 of 6 source(s) failed: paris-road" in r.stderr
    grid = conn.execute("SELECT count(*) FROM grid_intensity").fetchone()
    assert grid == (88,)


def test_sensors_check_and_catalogue_typo(conn, db_url, server, tmp_path) -> None:
    cat = catalogue_for(server, tmp_path)
    r = _cli(db_url, "ingest", "opendatasoft", "paris-road", "--start", "2024-09-02",
             "--catalogue", str(cat.path))
    assert r.returncode == 0, r.stderr
    r = _cli(db_url, "sensors", "check", "--catalogue", str(cat.path))
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if "paris-road-376-flow" in x)
    assert "23 readings" in line and "1 gap(s)" in line
    q = conn.execute("SELECT n_readings, n_gaps FROM sensor_quality WHERE sensor_id = "
                     "'paris-road-376-flow'").fetchone()
    assert q == (23, 1)
    bad = tmp_path / "bad.yaml"
    bad.write_text(cat.path.read_text().replace("kind: bike", "kind: bikes", 1))
    r = _cli(db_url, "sensors", "list", "--catalogue", str(bad))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "bad.yaml: sites[2] 'paris-bike-100007049-101007049': field 'kind'" in r.stderr


def test_previous_runs_backfill_command(conn, db_url, server, tmp_path) -> None:
    cat = catalogue_for(server, tmp_path, **{"open-meteo": {"sites": ["paris-road-376-flow"]}})
    args = ("ingest", "open-meteo-previous-runs", "--start", "2024-09-01", "--end",
            "2024-09-03", "--catalogue", str(cat.path))
    r = _cli(db_url, *args)
    assert r.returncode == 0, r.stderr
    assert "open-meteo: 862 forecast values kept as issued" in r.stdout
    assert "0 forecast values" in _cli(db_url, *args).stdout        # kept as issued
    n = conn.execute("SELECT count(*) FROM weather_forecasts").fetchone()
    assert n == (862,)
