"""Airflow fixtures: DAG files parsed and run by a real Airflow 3 in subprocesses.

Airflow reads its configuration (AIRFLOW_HOME, metadata database) once per process, so every
Airflow call runs in a fresh interpreter with an explicit environment: the pytest process never
imports Airflow and never touches ``~/airflow``.

The metadata database is a separate database (``airflow_meta``) on the suite's PostgreSQL
(``pg_admin_url``); ``airflow db migrate`` runs once per session (about 15 s), and the DAG runs
read and write ecodemo's data through ``ECODEMO_DATABASE_URL``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
HERE = Path(__file__).resolve().parent
META_DB = "airflow_meta"

# Checked without importing it: importing Airflow here would configure it for this process
# (and create ~/airflow). Every Airflow call below runs in a subprocess.
if find_spec("airflow") is None:
    pytest.skip("Airflow is an optional extra: pip install '.[airflow]'", allow_module_level=True)


def sqlalchemy_url(libpq_url: str, dbname: str) -> str:
    """A psycopg 3 SQLAlchemy URL for ``dbname`` on the server of a libpq URL/conninfo.

    The embedded server is reached through a unix socket: libpq's ``host=/dir`` goes into the
    query string, which both the sync and the async psycopg dialects understand.
    """
    from sqlalchemy.engine import URL

    p = conninfo_to_dict(libpq_url)
    host = str(p.get("host") or "")
    query = {"host": host} if host.startswith("/") else {}
    url = URL.create("postgresql+psycopg", username=p.get("user"), password=p.get("password"),
                     host=None if query else (host or None),
                     port=int(p["port"]) if p.get("port") else None,
                     database=dbname, query=query)
    return url.render_as_string(hide_password=False)


def base_env(airflow_home: Path) -> dict[str, str]:
    """Environment for an Airflow subprocess: this checkout's code and DAGs, nothing from ~."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "ECODEMO_"))}
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep),
    })
    return env


def run_json(args: list[str], env: dict[str, str], timeout: float) -> tuple[dict[str, Any], str]:
    """Run a helper script; return the JSON after its ``RESULT`` line and the full log."""
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=str(REPO), check=False)
    log = proc.stdout + proc.stderr
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):]), log
    raise AssertionError(f"no result (exit {proc.returncode}):\n{log[-6000:]}")


@pytest.fixture(scope="session")
def parse_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment to parse DAG files: a throw-away AIRFLOW_HOME, no database needed."""
    return base_env(tmp_path_factory.mktemp("airflow_parse"))


@pytest.fixture(scope="session")
def airflow_env(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """AIRFLOW_HOME with a migrated PostgreSQL metadata database (migrated once per session)."""
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{META_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{META_DB}"')
    env = base_env(tmp_path_factory.mktemp("airflow_home"))
    url = sqlalchemy_url(pg_admin_url, META_DB)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = url
    airflow = Path(sys.executable).with_name("airflow")
    cmd = [str(airflow)] if airflow.exists() else [sys.executable, "-m", "airflow"]
    proc = subprocess.run([*cmd, "db", "migrate"], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return env


@pytest.fixture()
def run_dags(airflow_env: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """Run DAGs one after the other with ``dag.test()`` in one subprocess; return their runs."""

    def run(runs: list[dict[str, Any]], ecodemo_env: dict[str, str],
            timeout: float = 1200) -> dict[str, Any]:
        env = {**airflow_env, **ecodemo_env}
        spec = json.dumps({"dags_folder": str(DAGS), "runs": runs})
        out, log = run_json([str(HERE / "run_dag.py"), spec], env, timeout)
        assert not out.get("import_errors"), out["import_errors"]
        return {"runs": {r["dag_id"]: r for r in out["runs"]}, "log": log}

    return run
