from __future__ import annotations

import psycopg

from ecodemo.store import migrate, timescale

TABLES = {"sites", "sensors", "readings", "weather", "quarantine", "forecasts", "models",
          "compute_runs", "evaluations", "balances", "model_choices", "grid_intensity",
          "sensor_quality", "ingested_files"}


def test_upgrade_from_empty_then_rerun_is_a_no_op(pg_admin_url: str) -> None:
    name = "t_migrate_empty"
    with psycopg.connect(pg_admin_url, autocommit=True) as c:
        # FORCE: on TimescaleDB the job scheduler stays connected to a previous run's database.
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    from tests.conftest import _with_dbname

    url = _with_dbname(pg_admin_url, name)
    with psycopg.connect(url) as c:
        assert all(not s.applied for s in migrate.status(c))
    first = migrate.upgrade(url)
    assert [m.version for m in first] == [m.version for m in migrate.available_migrations()]
    assert migrate.upgrade(url) == []
    with psycopg.connect(url) as c:
        tables = {r[0] for r in c.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert TABLES <= tables
        # the hourly aggregate exists with the same name on both variants
        assert c.execute("SELECT to_regclass('readings_hourly')").fetchone()[0] is not None
        statuses = migrate.status(c)
        assert all(s.applied for s in statuses)
        assert {s.variant for s in statuses if s.version == 2} == {timescale.detect(c).variant}
    with psycopg.connect(url) as c:  # a new session gets the database's settings
        assert c.execute("SHOW jit").fetchone() == ("off",)


def test_statement_splitter_keeps_each_statement() -> None:
    sql = "-- ecodemo: autocommit\nSELECT 1;\n-- comment\nSELECT 'a;b';\nSELECT 3;\n"
    assert migrate._statements(sql) == ["SELECT 1", "SELECT 'a;b'", "SELECT 3"]
