"""Ingesting old data on TimescaleDB: while the compression policy runs, and into the range
the continuous aggregate's policy never refreshes (TimescaleDB only).

Readings older than the policy's ``compress_after`` live in compressed chunks. A correction or
a backfill of that range, ingested while the policy's job compresses those chunks in another
connection, used to deadlock with the job (the ingest gave up after 5 retries in a test), and a
batch of more than 100,000 rows over compressed data was rejected by TimescaleDB's cap on rows
decompressed per transaction. Nothing may be lost and no deadlock may happen. Skips where the
store has no compression policy (plain PostgreSQL: ``make test-timescaledb`` runs it).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest

from ecodemo.store.ingest import ingest_table
from ecodemo.store.sites import Site, register_sites
from tests.integration.cli_helpers import cli_env, run_cli

N_SENSORS = 40
DAYS = 120  # 17 weekly chunks, all older than the policy's 30 days: all compressed
START = datetime(2024, 1, 1, tzinfo=UTC)


def _table(hours: int, value: float) -> pa.Table:
    """Every sensor, hourly from START for ``hours``; sensor i reads ``value + i``."""
    ts = [START + timedelta(hours=h) for h in range(hours)]
    return pa.table({
        "timestamp": pa.array(ts * N_SENSORS, pa.timestamp("us", tz="UTC")),
        "site_id": [f"old-{i:03d}" for i in range(N_SENSORS) for _ in ts],
        "value": [value + i for i in range(N_SENSORS) for _ in ts],
        "unit": ["bicycles/h"] * (hours * N_SENSORS),
    })


def _deadlocks(url: str) -> int:
    with psycopg.connect(url) as c:
        row = c.execute("SELECT deadlocks FROM pg_stat_database "
                        "WHERE datname = current_database()").fetchone()
    assert row is not None
    return int(row[0])


def test_old_rows_ingested_while_the_compression_job_runs(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        job = None
        if conn.execute("SELECT to_regclass('timescaledb_information.jobs')").fetchone() \
                != (None,):
            job = conn.execute(
                "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = "
                "'policy_compression' AND hypertable_name = 'readings'").fetchone()
        if job is None:
            pytest.skip("no compression policy on readings (TimescaleDB with its licence only)")
        register_sites(conn, [Site(f"old-{i:03d}", f"old counter {i}", "bike", 48.85, 2.35,
                                   "bicycles/h") for i in range(N_SENSORS)])
        base_hours = DAYS * 24
        ingest_table(conn, _table(base_hours, 1.0), "seed")
        conn.execute("CALL run_job(%s)", job)
        assert conn.execute("SELECT count(*) FROM timescaledb_information.chunks WHERE "
                            "hypertable_name = 'readings' AND is_compressed").fetchone() > (0,)
    deadlocks_before = _deadlocks(db_url)

    rounds = 4
    errors: list[str] = []
    job_runs = 0

    def ingest() -> None:
        # Each round corrects every stored row (115,200+ rows, one batch) and adds a day.
        with psycopg.connect(db_url, autocommit=True) as c:
            for k in range(rounds):
                try:
                    counts = ingest_table(c, _table(base_hours + 24 * (k + 1), 2.0 + k),
                                          f"round {k}")
                    assert counts.inserted == 24 * N_SENSORS, counts
                except Exception as exc:  # noqa: BLE001 (recorded, asserted below)
                    errors.append(f"ingest round {k}: {exc!r}")

    ingester = threading.Thread(target=ingest)
    ingester.start()
    # The policy's own job, in another connection, for as long as the ingest runs; each run
    # first gets work (decompressing every chunk), so the job compresses chunks being written.
    with psycopg.connect(db_url, autocommit=True) as c:
        while ingester.is_alive() or job_runs == 0:
            try:
                c.execute("SELECT count(decompress_chunk(ch, true)) "
                          "FROM show_chunks('readings') ch")
                c.execute("CALL run_job(%s)", job)
                job_runs += 1
            except Exception as exc:  # noqa: BLE001 (recorded, asserted below)
                errors.append(f"compression job: {exc!r}")
                break
    ingester.join()

    assert errors == []
    assert job_runs >= 1
    final = 2.0 + rounds - 1
    with psycopg.connect(db_url) as c:
        n, wrong = c.execute(
            "SELECT count(*), count(*) FILTER (WHERE value <> %s + substr(sensor_id, 5)::int) "
            "FROM readings", (final,)).fetchone() or (0, 0)
    assert (n, wrong) == (N_SENSORS * (DAYS * 24 + 24 * rounds), 0)
    time.sleep(1.5)  # server statistics reach pg_stat_database within a second
    assert _deadlocks(db_url) == deadlocks_before


def test_ingest_csv_materialises_history_older_than_the_aggregate_policy(
        db_url: str, tmp_path: Path) -> None:
    """``ecodemo ingest csv`` of old history refreshes ``readings_hourly`` over the hours its
    policy (last 7 days) never revisits; the recent hour is left to the policy; a re-ingest
    that writes nothing refreshes nothing."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('timescaledb_information.continuous_aggregates')"
                        ).fetchone() == (None,):
            pytest.skip("no continuous aggregate (TimescaleDB with its licence only)")
    sites = tmp_path / "sites.csv"
    sites.write_text("site_id,name,kind,latitude,longitude,unit\n"
                     + "".join(f"hist-{i},history {i},bike,48.85,2.35,bicycles/h\n"
                               for i in range(3)), encoding="utf-8")
    recent = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    stamps = [START + timedelta(hours=h) for h in range(48)] + [recent]
    data = tmp_path / "history.csv"
    data.write_text("timestamp,site_id,value,unit\n" + "".join(
        f"{t.isoformat()},hist-{i},{10 + i},bicycles/h\n" for i in range(3) for t in stamps),
        encoding="utf-8")
    env = cli_env(ECODEMO_DATABASE_URL=db_url, ECODEMO_STATE_DIR=str(tmp_path / "state"))
    first = run_cli(["ingest", "csv", str(data), "--sites", str(sites)], env)
    assert first.returncode == 0, first.stderr
    assert "readings_hourly refreshed from 2024-01-01 00:00 to " in first.stdout, first.stdout
    with psycopg.connect(db_url) as c:
        buckets = c.execute("SELECT min(bucket), max(bucket), count(*), sum(n) "
                            "FROM readings_hourly").fetchone()
    assert buckets == (START, START + timedelta(hours=47), 3 * 48, 3 * 48)
    again = run_cli(["ingest", "csv", str(data)], env)
    assert again.returncode == 0, again.stderr
    assert "readings_hourly" not in again.stdout
