"""A store filled by the real demo pipeline, shared by the dashboard, report and demo tests.

``ecodemo.demo.run_demo`` runs once per test session on its own database: the bundled
snapshot ingested, the model ladder, the replayed week of past forecasts, training, the 48 h
forecast, the evaluation and the balance, the dashboards and the report. Nothing is faked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from ecodemo.config import Settings
from tests.conftest import TEMPLATE_DB, _with_dbname


@dataclass(frozen=True)
class FilledStore:
    settings: Settings
    url: str
    now: datetime  # wall clock after the pipeline ran (compute_runs, model times)
    kinds: tuple[str, ...]
    workdir: Path  # the demo's outputs: report.html, dashboards/, summary.json
    log: tuple[str, ...]  # what the demo printed


def demo_store(pg_admin_url: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[FilledStore]:
    """Run the demo pipeline once into a fresh database (the session fixture ``filled_store``
    in tests/conftest.py)."""
    from ecodemo.demo import run_demo

    name = f"demo_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    url = _with_dbname(pg_admin_url, name)
    state: Path = tmp_path_factory.mktemp("demo_state")
    settings = Settings(database_url=SecretStr(url), state_dir=state,
                        models_dir=state / "models")
    log: list[str] = []
    workdir = run_demo(settings, state / "out", echo=log.append)
    with psycopg.connect(url, autocommit=True) as c:
        kinds = tuple(k for (k,) in c.execute(
            "SELECT DISTINCT s.kind FROM sensors s WHERE EXISTS "
            "(SELECT 1 FROM readings r WHERE r.sensor_id = s.sensor_id) ORDER BY 1"))
        c.execute("ANALYZE")
    yield FilledStore(settings=settings, url=url, now=datetime.now(UTC).replace(microsecond=0),
                      kinds=kinds, workdir=workdir, log=tuple(log))
    with psycopg.connect(pg_admin_url, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
