"""The ecodemo_publish DAG under compose's settings: a real Airflow run (``dag.test()``) with the
environment docker-compose.yml gives the task containers, the shared volume being a folder here.

Before this, no Grafana setting reached the tasks under compose and the publish task was always
skipped; now it must run and leave the dashboards where Grafana's file provider reads them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ecodemo.dashboards.build import build_all, render
from tests.dags.conftest import REPO


def _compose_task_env() -> tuple[dict[str, str], str]:
    """ECODEMO_* settings compose gives the task containers, and the volume the
    dashboards folder is mounted from."""
    svc = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"][
        "airflow-scheduler"]
    env = {k: str(v) for k, v in svc["environment"].items()
           if k.startswith("ECODEMO_GRAFANA") or k == "ECODEMO_DASHBOARDS_LANG"}
    folder = env["ECODEMO_GRAFANA_DASHBOARDS_DIR"]
    volume = next(v.split(":")[0] for v in svc["volumes"] if v.split(":")[1] == folder)
    return env, volume


def test_publish_dag_writes_the_dashboards_grafana_provisions(
        run_dags: Callable[..., dict[str, Any]], db_url: str, tmp_path: Path) -> None:
    compose_env, volume = _compose_task_env()
    assert compose_env["ECODEMO_DASHBOARDS_LANG"] == "${ECODEMO_DASHBOARDS_LANG:-fr}"
    shared = tmp_path / volume  # the named volume, as a folder
    env = {**compose_env, "ECODEMO_GRAFANA_DASHBOARDS_DIR": str(shared),
           "ECODEMO_DASHBOARDS_LANG": "fr",  # compose's default
           "ECODEMO_DATABASE_URL": db_url, "ECODEMO_STATE_DIR": str(tmp_path / "state")}
    logical = datetime.now(UTC).replace(minute=0, second=0, microsecond=0).isoformat()
    out = run_dags([{"dag_id": "ecodemo_publish", "logical_date": logical}], env)
    run = out["runs"]["ecodemo_publish"]
    assert run["state"] == "success", out["log"][-6000:]
    assert run["tasks"] == {"grafana_configured": "success", "publish": "success"}, run
    expected = build_all("fr")
    assert sorted(p.name for p in shared.iterdir()) == sorted(expected)
    for name, data in expected.items():
        text = (shared / name).read_text(encoding="utf-8")
        assert text == render(data) and json.loads(text)["uid"] == data["uid"]
