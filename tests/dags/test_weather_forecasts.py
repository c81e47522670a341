"""The weather DAG with a real Airflow (``dag.test()``) on PostgreSQL: forecasts as issued are
backfilled for its data interval's days from Open-Meteo's Previous Runs API, here the recorded
answer served by the local test server (tests/sensors/http_server.py; never the internet)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from tests.sensors.conftest import catalogue_for
from tests.sensors.http_server import PAYLOADS, ServerState, serve

PARIS = ZoneInfo("Europe/Paris")


def test_weather_dag_backfills_its_interval_as_issued_and_reruns_write_nothing(
        run_dags: Callable[..., dict[str, Any]], db_url: str, tmp_path: Path) -> None:
    doc = json.loads((PAYLOADS / "open-meteo" / "previous-runs.json").read_text("utf-8"))
    # the recorded answer covers 1-3 Sept 2024, before the DAGs' start date (Airflow creates no
    # task before it): served as 29-31 March 2025 instead (Paris clocks change on the 30th)
    shift = date(2025, 3, 29) - date(2024, 9, 1)
    doc["hourly"]["time"] = [(datetime.fromisoformat(t) + shift).isoformat(timespec="minutes")
                             for t in doc["hourly"]["time"]]
    state = ServerState(open_meteo={"previous-runs": doc})
    with serve(state) as url:
        catalogue_for(url, tmp_path)          # the shipped catalogue, pointed at the server
        env = {"ECODEMO_DATABASE_URL": db_url, "ECODEMO_STATE_DIR": str(tmp_path / "state"),
               "ECODEMO_SENSORS_DIR": str(tmp_path)}
        # a manual run: exactly its interval, [30 March 06:15, 31 March 06:15) Paris time
        logical = datetime(2025, 3, 31, 7, 0, tzinfo=PARIS).isoformat()
        spec = {"dag_id": "ecodemo_weather_forecasts", "logical_date": logical}
        first = run_dags([spec], env)
        second = run_dags([spec], env)
    for out in (first, second):
        run = out["runs"]["ecodemo_weather_forecasts"]
        assert run["state"] == "success", (run, out["log"][-6000:])
    tasks = first["runs"]["ecodemo_weather_forecasts"]["tasks"]
    assert sorted(k for k in tasks if k.startswith("backfill")) == ["backfill[0]"], (
        first["runs"], first["log"][-4000:])  # the one open_meteo source
    start, end = (datetime.fromisoformat(t).astimezone(PARIS)
                  for t in first["runs"]["ecodemo_weather_forecasts"]["data_interval"])
    days = (start.date().isoformat(), (end - timedelta(microseconds=1)).date().isoformat())
    assert days == ("2025-03-30", "2025-03-31")
    asked = [(q["start_date"], q["end_date"], q["latitude"]) for path, q in state.requests
             if path.startswith("/previous-runs/")]
    # the source's two sites, once per pass (a rerun refetches, keeps what is stored)
    assert len(asked) == 4 and {a[:2] for a in asked} == {days}
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            """SELECT station_id, min(valid_at), max(valid_at), count(*),
                      count(DISTINCT valid_at - issued_at)
               FROM weather_forecasts WHERE source = 'open-meteo:previous-runs'
               GROUP BY 1 ORDER BY 1""").fetchall()
        ages = {r[0] for r in conn.execute(
            """SELECT DISTINCT valid_at - issued_at FROM weather_forecasts
               WHERE source = 'open-meteo:previous-runs'""")}
        runs = conn.execute("SELECT count(*) FROM compute_runs WHERE stage = 'ingest' "
                            "AND details->>'source' = 'open-meteo'").fetchone()
    march30 = datetime(2025, 3, 30, tzinfo=ZoneInfo("UTC"))
    # 48 hours x 6 variables x 2 runs (1 and 2 days ahead), minus the null last temperature;
    # written once: the second pass found every issue stored
    assert rows == [(f"open-meteo:{site}", march30, march30 + timedelta(hours=47), 2 * 287, 2)
                    for site in ("paris-road-376-flow", "rte-hauts-de-france-solar")]
    # issued 1 and 2 days before each hour, plus the 6 h publication margin
    assert ages == {timedelta(hours=18), timedelta(hours=42)}
    assert runs == (2,)                        # each pass measured
