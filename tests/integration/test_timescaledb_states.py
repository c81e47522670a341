"""``ecodemo db upgrade`` and ``db status`` in each TimescaleDB state, on real servers.

The licence and preloading are server settings, so each state is its own server; ``.ci/run``
starts them and sets (each a maintenance database URL of a role with CREATEDB):

- ``ECODEMO_TEST_TIMESCALEDB_URL``: preloaded, Timescale licence (the production case);
- ``ECODEMO_TEST_TIMESCALEDB_APACHE_URL``: preloaded, ``timescaledb.license = 'apache'``;
- ``ECODEMO_TEST_TIMESCALEDB_NOPRELOAD_URL``: extension installed, not preloaded.

A test skips when its URL is unset. The plain state runs on the suite's own server when that one
has no TimescaleDB (the embedded PostgreSQL). The real CLI runs in a subprocess.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from ecodemo.errors import DatabaseError
from ecodemo.store import timescale
from ecodemo.store.ingest import set_retention
from tests.conftest import _with_dbname
from tests.integration.cli_helpers import cli_env, run_cli

HYPERTABLES = {"readings", "forecasts", "compute_runs"}


def _server(var: str) -> str:
    url = os.environ.get(var)
    if not url:
        pytest.skip(f"{var} not set (a TimescaleDB server in that state; .ci/run starts one)")
    return url


@pytest.fixture()
def new_db(request: pytest.FixtureRequest) -> Iterator[Callable[[str | None], str]]:
    """Make an empty database on the server named by an environment variable (None: the
    suite's own server); dropped after the test."""
    made: list[tuple[str, str]] = []

    def make(var: str | None) -> str:
        admin_url = _server(var) if var else request.getfixturevalue("pg_admin_url")
        name = f"t_ts_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        made.append((admin_url, name))
        return _with_dbname(admin_url, name)

    yield make
    for admin_url, name in made:
        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cli(args: list[str], url: str, tmp_path: Path) -> tuple[int, str, str]:
    r = run_cli(args, cli_env(ECODEMO_DATABASE_URL=url, ECODEMO_STATE_DIR=str(tmp_path)))
    return r.returncode, r.stdout, r.stderr


def _hypertables(c: psycopg.Connection) -> dict[str, bool]:
    """Hypertable name -> compression enabled."""
    return dict(c.execute("SELECT hypertable_name, compression_enabled "
                          "FROM timescaledb_information.hypertables"))


def _insert(c: psycopg.Connection, rows: list[tuple[str, str, float]]) -> None:
    c.cursor().executemany(
        "INSERT INTO readings (sensor_id, ts, value) VALUES (%s, %s::timestamptz, %s)", rows)


def test_preloaded_server_gets_hypertables_compression_and_continuous_aggregate(
        new_db: Callable[[str | None], str], tmp_path: Path) -> None:
    fresh_db = new_db("ECODEMO_TEST_TIMESCALEDB_URL")
    code, out, err = _cli(["db", "upgrade"], fresh_db, tmp_path)
    assert code == 0, err
    assert "applied 002_hourly_and_retention (timescaledb)" in out
    with psycopg.connect(fresh_db, autocommit=True) as c:
        assert _hypertables(c) == {"readings": True, "forecasts": True, "compute_runs": False}
        caggs = {r[0] for r in c.execute(
            "SELECT view_name FROM timescaledb_information.continuous_aggregates")}
        assert caggs == {"readings_hourly"}
        jobs = {r[0] for r in c.execute("SELECT proc_name FROM timescaledb_information.jobs")}
        assert {"policy_compression", "policy_refresh_continuous_aggregate"} <= jobs
        # The aggregate holds what the readings say once refreshed (recent readings: the
        # scheduler runs the retention policy below at once).
        c.execute("INSERT INTO readings (sensor_id, ts, value) SELECT 's1', h + m, v "
                  "FROM date_trunc('hour', now() - interval '3 hours') AS h, "
                  "(VALUES (interval '0 min', 1.0), (interval '30 min', 3.0)) AS x (m, v)")
        c.execute("CALL refresh_continuous_aggregate('readings_hourly', NULL, NULL)")
        assert c.execute("SELECT value_avg, n FROM readings_hourly").fetchall() == [(2.0, 2)]
        assert "retention policy" in set_retention(c, 30)
        jobs = {r[0] for r in c.execute("SELECT proc_name FROM timescaledb_information.jobs")}
        assert "policy_retention" in jobs
    code, out, err = _cli(["db", "status"], fresh_db, tmp_path)
    assert code == 0, err
    assert "preloaded, licence timescale: hypertables, compression" in out
    assert "readings: 2 rows" in out


def test_apache_licence_gets_hypertables_without_compression_or_policies(
        new_db: Callable[[str | None], str], tmp_path: Path) -> None:
    fresh_db = new_db("ECODEMO_TEST_TIMESCALEDB_APACHE_URL")
    code, out, err = _cli(["db", "upgrade"], fresh_db, tmp_path)
    assert code == 0, err
    assert "applied 002_hourly_and_retention (timescaledb-apache)" in out
    assert "licence apache: hypertables only" in out
    with psycopg.connect(fresh_db, autocommit=True) as c:
        assert _hypertables(c) == dict.fromkeys(HYPERTABLES, False)
        assert c.execute("SELECT count(*) FROM timescaledb_information.continuous_aggregates"
                         ).fetchone() == (0,)
        assert c.execute("SELECT 1 FROM pg_views WHERE viewname = 'readings_hourly'").fetchone()
        assert c.execute("SELECT count(*) FROM timescaledb_information.jobs "
                         "WHERE hypertable_name IS NOT NULL").fetchone() == (0,)
        # Retention without policies: old chunks dropped now, recent readings kept.
        _insert(c, [("s1", "2020-01-01T00:00Z", 1.0), ("s1", "2020-01-01T00:30Z", 3.0)])
        c.execute("INSERT INTO readings (sensor_id, ts, value) VALUES ('s1', now(), 5)")
        assert c.execute("SELECT value_avg, n FROM readings_hourly WHERE bucket < '2021-01-01'"
                         ).fetchall() == [(2.0, 2)]
        message = set_retention(c, 30)
        assert message.startswith("dropped 1 chunk(s)"), message
        assert c.execute("SELECT value FROM readings").fetchall() == [(5.0,)]
    code, out, err = _cli(["db", "status"], fresh_db, tmp_path)
    assert code == 0, err
    assert "preloaded, licence apache: hypertables only" in out


def test_not_preloaded_server_is_refused_in_one_line_and_left_untouched(
        new_db: Callable[[str | None], str], tmp_path: Path) -> None:
    fresh_db = new_db("ECODEMO_TEST_TIMESCALEDB_NOPRELOAD_URL")
    code, out, err = _cli(["db", "upgrade"], fresh_db, tmp_path)
    assert code == DatabaseError.exit_code, (out, err)
    message = err.strip()
    assert "\n" not in message and "unexpected" not in message, message
    assert "shared_preload_libraries = 'timescaledb'" in message and "restart" in message
    with psycopg.connect(fresh_db, autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                         ).fetchone() == (0,)
        assert c.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"
                         ).fetchone() is None
    code, out, err = _cli(["db", "status"], fresh_db, tmp_path)
    assert code == 0, err
    assert "NOT preloaded" in out and "002_hourly_and_retention: pending" in out
    # The other commands upgrade first: the same line, not a crash.
    code, out, err = _cli(["db", "retention", "--days", "30"], fresh_db, tmp_path)
    assert (code, err.strip()) == (DatabaseError.exit_code, message)


def test_plain_postgresql_gets_plain_schema(
        new_db: Callable[[str | None], str], tmp_path: Path) -> None:
    fresh_db = new_db(None)
    with psycopg.connect(fresh_db) as c:
        if timescale.detect(c).available_version:
            pytest.skip("this server offers TimescaleDB")
    code, out, err = _cli(["db", "upgrade"], fresh_db, tmp_path)
    assert code == 0, err
    assert "applied 002_hourly_and_retention (plain)" in out
    code, out, err = _cli(["db", "status"], fresh_db, tmp_path)
    assert code == 0, err
    assert "TimescaleDB: not on this server" in out
    # Retention on plain PostgreSQL: a DELETE now, recent readings kept.
    with psycopg.connect(fresh_db, autocommit=True) as c:
        _insert(c, [("s1", "2020-01-01T00:00Z", 1.0), ("s1", "2020-01-01T00:30Z", 3.0)])
        c.execute("INSERT INTO readings (sensor_id, ts, value) VALUES ('s1', now(), 5)")
        assert set_retention(c, 30) == "deleted 2 readings older than 30 days"
        assert c.execute("SELECT value FROM readings").fetchall() == [(5.0,)]


@pytest.mark.parametrize(("state", "creating", "refused"), [
    (timescale.TimescaleState(None, None, False, None), True, False),          # plain server
    (timescale.TimescaleState("2.28.3", None, False, None), False, False),     # nothing to add
    (timescale.TimescaleState("2.28.3", None, False, None), True, True),       # would FATAL
    (timescale.TimescaleState("2.28.3", "2.28.3", False, None), False, True),  # unsafe writes
    (timescale.TimescaleState("2.28.3", "2.28.3", True, "apache"), True, False),
])
def test_check_preloaded_refuses_only_unsafe_states(
        state: timescale.TimescaleState, creating: bool, refused: bool) -> None:
    if refused:
        with pytest.raises(DatabaseError, match="shared_preload_libraries"):
            timescale.check_preloaded(state, creating=creating, label="db")
    else:
        timescale.check_preloaded(state, creating=creating, label="db")
