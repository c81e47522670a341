"""Ingesting old data while TimescaleDB's compression policy runs (TimescaleDB only).

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

import psycopg
import pyarrow as pa
import pytest

from ecodemo.store.ingest import ingest_table
from ecodemo.store.sites import Site, register_sites

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
