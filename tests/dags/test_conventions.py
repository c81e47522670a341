"""DAG conventions: retries with backoff, catchup off, Paris-time start, tags, docs, schedules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dags.conftest import DAGS, HERE, run_json

READINGS = "ecodemo://store/readings"
FORECASTS = "ecodemo://store/forecasts"
EVALUATIONS = "ecodemo://store/evaluations"


@pytest.fixture(scope="module")
def dags(parse_env: dict[str, str]) -> dict[str, Any]:
    out, _ = run_json([str(HERE / "inspect_dags.py"), str(DAGS)], parse_env, timeout=120)
    assert out["import_errors"] == {}
    return dict(out["dags"])


def test_every_task_retries_with_exponential_backoff(dags: dict[str, Any]) -> None:
    for dag_id, dag in dags.items():
        for t in dag["tasks"]:
            where = f"{dag_id}.{t['task_id']}"
            assert t["retries"] >= 2, where
            assert t["retry_exponential_backoff"] and t["retry_exponential_backoff"] > 1, where
            assert t["max_retry_delay_s"], f"{where}: backoff must be capped"


def test_catchup_off_tz_aware_start_tags_and_docs(dags: dict[str, Any]) -> None:
    for dag_id, dag in dags.items():
        assert dag["catchup"] is False, dag_id
        assert dag["start_date"] and dag["start_tz"], f"{dag_id}: start_date must be tz-aware"
        assert "ecodemo" in dag["tags"] and len(dag["tags"]) >= 2, dag_id
        assert dag["doc_md"] and len(dag["doc_md"]) > 200, f"{dag_id}: doc_md missing or thin"
        assert dag["max_active_runs"] == 1, dag_id


@pytest.mark.parametrize(("dag_id", "cron"), [
    ("ecodemo_ingest", "0 * * * *"),      # hourly
    ("ecodemo_forecast", "5 * * * *"),    # hourly, after the ingest
    ("ecodemo_evaluate", "30 2 * * *"),   # daily
    ("ecodemo_train", "0 3 * * 1"),       # weekly ...
    ("ecodemo_weather_forecasts", "15 6 * * *"),   # daily
])
def test_time_schedules_in_paris_time(dags: dict[str, Any], dag_id: str, cron: str) -> None:
    assert dags[dag_id]["cron"] == cron
    assert dags[dag_id]["cron_tz"] == "Europe/Paris"


def test_asset_wiring(dags: dict[str, Any]) -> None:
    outlets = {d: {u for t in dag["tasks"] for u in t["outlets"]} for d, dag in dags.items()}
    assert READINGS in outlets["ecodemo_ingest"]
    assert FORECASTS in outlets["ecodemo_forecast"]
    assert EVALUATIONS in outlets["ecodemo_evaluate"]
    # ... and train also runs on new readings; publish runs on forecasts or evaluations only.
    assert dags["ecodemo_train"]["timetable"] == "AssetOrTimeSchedule"
    assert dags["ecodemo_train"]["schedule_assets"] == [READINGS]
    assert dags["ecodemo_publish"]["cron"] is None
    assert dags["ecodemo_publish"]["schedule_assets"] == sorted([FORECASTS, EVALUATIONS])


def test_mapping_and_low_carbon_sensor(dags: dict[str, Any]) -> None:
    mapped = {d: {t["task_id"] for t in dag["tasks"] if t["mapped"]} for d, dag in dags.items()}
    assert mapped["ecodemo_ingest"] == {"ingest"}
    assert mapped["ecodemo_train"] == {"choose_model", "train_model"}
    assert mapped["ecodemo_forecast"] == {"forecast"}
    assert mapped["ecodemo_weather_forecasts"] == {"backfill"}
    tasks = {t["task_id"]: t for t in dags["ecodemo_train"]["tasks"]}
    sensor = tasks["low_carbon_window"]
    assert sensor["mode"] == "reschedule"     # frees its worker slot between pokes
    assert sensor["timeout_s"] and sensor["timeout_s"] <= 12 * 3600
    assert "low_carbon_window" in tasks["choose_model"]["upstream"]


@pytest.mark.parametrize(("dag_id", "mapped", "announce", "leaf"), [
    ("ecodemo_ingest", "ingest", "readings_updated", "all_sources_ingested"),
    ("ecodemo_forecast", "forecast", "forecasts_updated", "all_kinds_forecast"),
])
def test_partial_failure_announces_but_fails_the_run(dags: dict[str, Any], dag_id: str,
                                                      mapped: str, announce: str,
                                                      leaf: str) -> None:
    tasks = {t["task_id"]: t for t in dags[dag_id]["tasks"]}
    # The Asset is emitted when at least one mapped task succeeded ...
    assert tasks[announce]["trigger_rule"] == "all_done_min_one_success"
    assert tasks[announce]["outlets"] and mapped in tasks[announce]["upstream"]
    # ... and a leaf that needs them all makes a failed source or kind fail the run.
    assert tasks[leaf]["trigger_rule"] == "all_success" and tasks[leaf]["upstream"] == [mapped]
    downstream = {u for t in tasks.values() for u in t["upstream"]}
    assert leaf not in downstream
