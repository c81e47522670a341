"""ingest -> train -> forecast -> evaluate with a real Airflow (``dag.test()``) on PostgreSQL.

The DAGs run on the bundled real snapshot, against a fresh ecodemo database; Airflow's own
metadata lives in a separate database on the same server. A second pass over the same logical
date must change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from tests.catalogues import TOWN_READINGS, TOWN_SENSOR, snapshot_only, town

TABLES = ("readings", "models", "forecasts", "compute_runs", "evaluations")


def _counts(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                for t in TABLES}


def _assert_all_succeeded(run: dict[str, Any], log: str) -> None:
    bad = {k: v for k, v in run["tasks"].items() if v not in ("success", "skipped")}
    assert run["state"] == "success" and not bad, (
        f"{run['dag_id']}: {run['state']} {bad}\n{log[-8000:]}")


def test_dags_end_to_end_on_the_snapshot(run_dags: Callable[..., dict[str, Any]], db_url: str,
                                         tmp_path: Path) -> None:
    # A catalogue that enables the bundled snapshot on purpose (the shipped one does not).
    env = {"ECODEMO_DATABASE_URL": db_url, "ECODEMO_STATE_DIR": str(tmp_path / "state"),
           "ECODEMO_MODELS_DIR": str(tmp_path / "models"), "ECODEMO_NUM_THREADS": "2",
           "ECODEMO_SENSORS_DIR": str(snapshot_only(tmp_path / "sensors"))}
    # One logical date for both passes: the current hour (Airflow infers each DAG's interval).
    logical = datetime.now(UTC).replace(minute=0, second=0, microsecond=0).isoformat()
    ingest = {"dag_id": "ecodemo_ingest", "logical_date": logical,
              "conf": {"sources": ["snapshot"]}}  # the bundled snapshot only: no network
    forecast = {"dag_id": "ecodemo_forecast", "logical_date": logical}
    evaluate = {"dag_id": "ecodemo_evaluate", "logical_date": logical}
    train = {"dag_id": "ecodemo_train", "logical_date": logical}

    first = run_dags([ingest, train, forecast, evaluate], env)
    for run in first["runs"].values():
        _assert_all_succeeded(run, first["log"])
    after_first = _counts(db_url)
    print(f"rows after the first pass: {after_first}")
    for table, n in after_first.items():
        assert n > 0, f"no rows in {table} after the first pass"
    with psycopg.connect(db_url) as conn:
        stages = {r[0] for r in conn.execute("SELECT DISTINCT stage FROM compute_runs")}
        kinds_forecast = {r[0] for r in conn.execute(
            "SELECT DISTINCT s.kind FROM forecasts f JOIN sensors s USING (sensor_id)")}
        promoted = {r[0] for r in conn.execute(
            "SELECT DISTINCT kind FROM models WHERE status = 'promoted'")}
    assert "ingest" in stages and len(stages) >= 3, stages   # ingest, train..., predict...
    assert promoted and kinds_forecast == promoted
    # One mapped task per kind: train and forecast fanned out over the kinds with data.
    assert sum(k.startswith("train_model[") for k in first["runs"]["ecodemo_train"]["tasks"]) \
        == len(promoted)

    # Rerun of the same logical date: readings and forecasts are keyed, nothing is added.
    second = run_dags([ingest, forecast, evaluate], env)
    for run in second["runs"].values():
        _assert_all_succeeded(run, second["log"])
    after_second = _counts(db_url)
    for table in ("readings", "models", "forecasts", "evaluations"):
        assert after_second[table] == after_first[table], table
    # ... while each rerun task was still measured (a new compute run per task).
    assert after_second["compute_runs"] > after_first["compute_runs"]


def test_ingest_dag_on_a_territory_of_its_own(run_dags: Callable[..., dict[str, Any]],
                                              db_url: str, tmp_path: Path) -> None:
    """A deployment's own catalogue (one drop-folder source, one site): the ingest DAG maps
    exactly that source, runs green, and the store holds only the territory's readings."""
    env = {"ECODEMO_DATABASE_URL": db_url, "ECODEMO_STATE_DIR": str(tmp_path / "state"),
           "ECODEMO_SENSORS_DIR": str(town(tmp_path / "town"))}
    logical = datetime.now(UTC).replace(minute=0, second=0, microsecond=0).isoformat()
    out = run_dags([{"dag_id": "ecodemo_ingest", "logical_date": logical}], env)
    run = out["runs"]["ecodemo_ingest"]
    _assert_all_succeeded(run, out["log"])
    assert sorted(k for k in run["tasks"] if k.startswith("ingest")) == ["ingest[0]"]
    with psycopg.connect(db_url) as conn:
        readings = conn.execute("SELECT sensor_id, count(*) FROM readings GROUP BY 1").fetchall()
        sites = [r[0] for r in conn.execute("SELECT site_id FROM sites")]
        sources = [r[0] for r in conn.execute(
            "SELECT details->>'source' FROM compute_runs WHERE stage = 'ingest'")]
    assert readings == [(TOWN_SENSOR, TOWN_READINGS)]
    assert sites == [TOWN_SENSOR]
    assert sources == ["town-drop"]
