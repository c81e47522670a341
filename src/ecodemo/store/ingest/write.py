"""Writing validated batches: classify against the stored rows, COPY the new ones, upsert the
changed ones, quarantine the rejected ones; one transaction per batch.

The one writer of ``readings`` and ``quarantine`` (and of the refresh of ``readings_hourly``):
the quality checks' flag bits (:func:`set_check_flags`), retention (:func:`set_retention`) and
the demo purge's deletions go through here too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pyarrow as pa
from psycopg import sql

from ecodemo.errors import DatabaseError
from ecodemo.store import timescale

from .binary_copy import PG_EPOCH_US, copy_payload, readings_payload_chunks, sensor_runs
from .records import CHECK_FLAGS_MASK, IngestCounts, Rejected, SensorInfo, load_sensors, one_line
from .validation import ValidatedBatch, validate

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Per batch, in one transaction:
#   1. fetch the stored rows of the batch's (sensor, [first ts, last ts]) ranges, packed by the
#      server into one bytea per sensor (an index range scan; nothing when the range is empty);
#   2. classify each validated row on the client with NumPy: new, changed or unchanged;
#   3. new rows: binary COPY straight into ``readings`` (as fast as a raw COPY), inside a
#      savepoint. If a concurrent ingest inserted some of them meanwhile, the unique key makes
#      the COPY fail; the savepoint is rolled back and those rows take the upsert path;
#   4. changed rows (and new rows whose COPY lost a race): binary COPY into a temporary staging
#      table, then one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE value IS DISTINCT`` that
#      counts what it inserted and updated. Unchanged rows are never written, so a re-ingest of
#      unchanged data only reads.
# Rows are sorted by (sensor, ts) in every statement, so overlapping ingests lock rows in the
# same order; a deadlock or serialisation failure retries the whole batch.

# LATERAL: one index range scan per sensor, whatever else the table holds (a plain join let
# the planner hash-join a sequential scan of all readings). Bounds are exact timestamptz values.
_FETCH_EXISTING = """
SELECT q.i::int4, s.n, s.packed
FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[])
     WITH ORDINALITY AS q(sensor_id, lo, hi, i)
CROSS JOIN LATERAL (
    SELECT count(*) AS n,
           string_agg(timestamptz_send(r.ts) || float8send(r.value)
                      || int2send(r.quality_flags), ''::bytea) AS packed
    FROM readings r
    WHERE r.sensor_id = q.sensor_id AND r.ts BETWEEN q.lo AND q.hi) s
WHERE s.n > 0
"""
#: One stored row as packed by _FETCH_EXISTING: ts (us since 2000), value, quality_flags.
_STORED_DTYPE = np.dtype([("ts", ">i8"), ("val", ">f8"), ("flags", ">i2")])

_UPSERT = """
WITH up AS (
    INSERT INTO readings (sensor_id, ts, value, quality_flags)
    SELECT (%s::text[])[s.sensor_idx], s.ts, s.value, s.flags FROM _ecodemo_stage s
    ON CONFLICT (sensor_id, ts) DO UPDATE
        SET value = EXCLUDED.value,
            quality_flags = EXCLUDED.quality_flags | CASE
                WHEN readings.value IS DISTINCT FROM EXCLUDED.value THEN 0
                ELSE readings.quality_flags & 216 END,  -- CHECK_FLAGS_MASK
            ingested_at = now()
        WHERE readings.value IS DISTINCT FROM EXCLUDED.value
           OR (readings.quality_flags & ~216)
              IS DISTINCT FROM EXCLUDED.quality_flags
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
"""
assert CHECK_FLAGS_MASK == 216, "update the literal in _UPSERT"


def classify(conn: psycopg.Connection, batch: ValidatedBatch) -> tuple[np.ndarray, np.ndarray]:
    """Compare a batch with what is stored: (new rows mask, changed rows mask).

    Reads only the stored rows within each sensor's [first, last] timestamp of the batch.
    """
    new = np.ones(batch.n_good, dtype=bool)
    changed = np.zeros(batch.n_good, dtype=bool)
    groups = list(sensor_runs(batch.idx))
    if not groups:
        return new, changed
    names = [batch.sensor_ids[i - 1] for i, _, _ in groups]
    lo = [_EPOCH + timedelta(microseconds=int(batch.ts_us[a])) for _, a, _ in groups]
    hi = [_EPOCH + timedelta(microseconds=int(batch.ts_us[b - 1])) for _, _, b in groups]
    cur = conn.cursor(binary=True)
    for g, count, packed in cur.execute(_FETCH_EXISTING, (names, lo, hi)):
        _, a, b = groups[g - 1]
        stored = np.frombuffer(packed, dtype=_STORED_DTYPE, count=count)
        stored = stored[np.argsort(stored["ts"], kind="stable")]
        ts = batch.ts_us[a:b] - PG_EPOCH_US
        pos = np.minimum(np.searchsorted(stored["ts"], ts), count - 1)
        hit = stored["ts"][pos] == ts
        # Bits the quality checks set later are not the source's: ignore them, as _UPSERT does.
        same = hit & (stored["val"][pos] == batch.value[a:b]) \
            & ((stored["flags"][pos] & ~CHECK_FLAGS_MASK) == batch.flags[a:b])
        new[a:b] = ~hit
        changed[a:b] = hit & ~same
    return new, changed


# TimescaleDB: the chunks of readings that overlap a batch's time range, oldest first.
_OVERLAPPING_CHUNKS = """
SELECT chunk_schema, chunk_name
FROM timescaledb_information.chunks
WHERE hypertable_schema = current_schema() AND hypertable_name = 'readings'
  AND range_end > %s AND range_start <= %s
ORDER BY range_start
"""


def _lock_chunks_first(conn: psycopg.Connection, batch: ValidatedBatch) -> None:
    """On a hypertable, take the write lock on every chunk the batch overlaps before reading.

    Why: ``classify`` reads the stored rows first (ACCESS SHARE on each chunk), and the COPY
    then needs ROW EXCLUSIVE. If TimescaleDB's compression job takes its SHARE lock on one of
    those chunks in between, the COPY waits for the job and the job, which ends by taking
    ACCESS EXCLUSIVE to swap in the compressed data, waits for our ACCESS SHARE: a deadlock
    (seen when old data is ingested while the policy runs). Taking ROW EXCLUSIVE first makes
    the job wait for the batch, or the batch for the job, never both. Also lifts TimescaleDB's
    per-transaction cap on decompressed rows (100,000 by default): correcting or backfilling
    a compressed range decompresses the batch's segments, a bounded amount for a batch (a few
    times its rows), and the cap would reject the batch outright.
    """
    if conn.execute("SELECT to_regclass('timescaledb_information.chunks')").fetchone() \
            == (None,):
        return
    conn.execute("SET LOCAL timescaledb.max_tuples_decompressed_per_dml_transaction = 0")
    if not batch.n_good:
        return
    lo = _EPOCH + timedelta(microseconds=int(batch.ts_us.min()))
    hi = _EPOCH + timedelta(microseconds=int(batch.ts_us.max()))
    chunks = [sql.Identifier(schema, name)
              for schema, name in conn.execute(_OVERLAPPING_CHUNKS, (lo, hi))]
    if chunks:
        conn.execute(sql.SQL("LOCK TABLE {} IN ROW EXCLUSIVE MODE").format(
            sql.SQL(", ").join(chunks)))


def _upsert_rows(conn: psycopg.Connection, batch: ValidatedBatch, rows: np.ndarray
                 ) -> tuple[int, int]:
    """Staging COPY + one upsert for ``rows``; returns (inserted, updated). In caller's txn."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS _ecodemo_stage (sensor_idx int4, "
        "ts timestamptz, value float8, flags int2) ON COMMIT DELETE ROWS"
    )
    conn.execute("TRUNCATE _ecodemo_stage")
    with conn.cursor().copy("COPY _ecodemo_stage FROM STDIN (FORMAT BINARY)") as cp:
        cp.write(copy_payload(batch, rows))
    row = conn.execute(_UPSERT, (batch.sensor_ids,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _copy_new_rows(conn: psycopg.Connection, batch: ValidatedBatch, rows: np.ndarray) -> bool:
    """COPY rows believed new straight into readings; False if one exists (lost a race)."""
    try:
        with conn.transaction(), conn.cursor().copy(
            "COPY readings (sensor_id, ts, value, quality_flags) FROM STDIN (FORMAT BINARY)"
        ) as cp:
            for chunk in readings_payload_chunks(batch, rows):
                cp.write(chunk)
    except psycopg.errors.UniqueViolation:
        return False
    return True


def quarantine_rows(conn: psycopg.Connection, source: str, rejected: list[Rejected]) -> int:
    """Store rejected rows (idempotent on source, line, raw row and reason). In caller's txn."""
    if not rejected:
        return 0
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS _ecodemo_qstage (line_no bigint, sensor_id text, "
        "raw text, reason text) ON COMMIT DELETE ROWS"
    )
    with conn.cursor().copy("COPY _ecodemo_qstage FROM STDIN") as cp:
        for r in rejected:
            # Text COPY cannot carry NUL bytes; keep everything else as it came.
            cp.write_row((r.line_no, r.sensor_id and r.sensor_id.replace("\x00", "\\0"),
                          r.raw.replace("\x00", "\\0"), r.reason.replace("\x00", "\\0")))
    conn.execute(
        "INSERT INTO quarantine (source, line_no, sensor_id, raw, reason) "
        "SELECT %s, line_no, sensor_id, raw, reason FROM _ecodemo_qstage "
        "ON CONFLICT (row_key) DO NOTHING",
        (source,),
    )
    return len(rejected)


def write_batch(conn: psycopg.Connection, batch: ValidatedBatch, source: str,
                *, retries: int = 5) -> IngestCounts:
    """Write one validated batch and quarantine its rejects, in one transaction."""
    counts = IngestCounts(read=batch.n_good + len(batch.rejected))
    inserted = updated = 0
    written: np.ndarray | None = None  # rows inserted or updated (a superset: see below)
    for attempt in range(retries):
        try:
            with conn.transaction():
                inserted = updated = 0
                _lock_chunks_first(conn, batch)
                if batch.n_good:
                    new, changed = classify(conn, batch)
                    # new or changed; a row a concurrent ingest wrote first is counted too
                    written = new | changed
                    slow = changed
                    if new.any():
                        if _copy_new_rows(conn, batch, np.flatnonzero(new)):
                            inserted = int(new.sum())
                        else:
                            slow = changed | new
                    if slow.any():
                        ins, updated = _upsert_rows(conn, batch, np.flatnonzero(slow))
                        inserted += ins
                quarantine_rows(conn, source, batch.rejected)
            break
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
            if attempt == retries - 1:
                raise
            time.sleep(0.05 * (2**attempt))
        except psycopg.OperationalError as exc:
            # libpq's messages span lines ("server closed the connection unexpectedly\n\tThis
            # probably means..."): the CLI prints one line, so fold them.
            raise DatabaseError(f"ingestion of {source} interrupted: {one_line(exc)}") from exc
    counts.inserted, counts.updated = inserted, updated
    if written is not None and written.any():
        ts = batch.ts_us[written]
        counts.written(_EPOCH + timedelta(microseconds=int(ts.min())),
                       _EPOCH + timedelta(microseconds=int(ts.max())))
    counts.unchanged = batch.n_good - inserted - updated
    counts.quarantined = len(batch.rejected)
    for r in batch.rejected:
        key = r.reason.split("'")[0].strip() if "'" in r.reason else r.reason
        counts.reasons[key] = counts.reasons.get(key, 0) + 1
    return counts


def ingest_table(conn: psycopg.Connection, table: pa.Table, source: str,
                 sensors: dict[str, SensorInfo] | None = None, *, first_line: int = 2,
                 id_column: str = "site_id", timezone: str | None = None) -> IngestCounts:
    """Validate and write an in-memory long-format table (used by connectors); ``timezone``
    localises naive stamps instead of each sensor's."""
    if sensors is None:
        sensors = load_sensors(conn)
    t0 = time.perf_counter()
    counts = write_batch(conn, validate(table, sensors, first_line=first_line,
                                        id_column=id_column, timezone=timezone), source)
    counts.seconds = time.perf_counter() - t0
    return counts


# ---------------------------------------------------------------- quality flags, retention, purge

def set_check_flags(conn: psycopg.Connection, sensor_id: str, since: datetime | None,
                    flagged: Sequence[tuple[datetime, int]]) -> None:
    """Recompute the quality checks' bits of one sensor's readings: clear them from ``since``
    on (when given), then OR in ``flagged`` (timestamp, bits). In the caller's transaction."""
    if since is not None:
        conn.execute(
            "UPDATE readings SET quality_flags = quality_flags & ~(%s::int) "
            "WHERE sensor_id = %s AND ts >= %s AND quality_flags & %s::int <> 0",
            (CHECK_FLAGS_MASK, sensor_id, since, CHECK_FLAGS_MASK))
    if flagged:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS _ecodemo_flags (ts timestamptz, "
                     "bits int2) ON COMMIT DELETE ROWS")
        with conn.cursor().copy("COPY _ecodemo_flags (ts, bits) FROM STDIN") as cp:
            for row in flagged:
                cp.write_row(row)
        conn.execute("UPDATE readings r SET quality_flags = r.quality_flags | f.bits "
                     "FROM _ecodemo_flags f WHERE r.sensor_id = %s AND r.ts = f.ts",
                     (sensor_id,))


def set_retention(conn: psycopg.Connection, days: int) -> str:
    """Drop raw readings older than ``days``. TimescaleDB: a retention policy; Apache-only
    licence (no policies): ``drop_chunks`` now; plain: a DELETE now.

    The continuous aggregate refreshes only the last 7 days, so retention must be longer.
    """
    if days <= 7:
        raise ValueError("retention must exceed the 7-day aggregate refresh window")
    state = timescale.detect(conn)
    if state.installed_version and state.apache_only:
        cur = conn.execute(
            "SELECT drop_chunks('readings', older_than => make_interval(days => %s))", (days,))
        n = len(cur.fetchall())
        return (f"dropped {n} chunk(s) of readings older than {days} days (TimescaleDB Apache "
                "licence has no retention policy: run this command on a schedule)")
    if state.installed_version:
        conn.execute(
            "SELECT add_retention_policy('readings', make_interval(days => %s), "
            "if_not_exists => true)",
            (days,),
        )
        return f"retention policy: readings older than {days} days are dropped by TimescaleDB"
    cur = conn.execute(
        "DELETE FROM readings WHERE ts < now() - make_interval(days => %s)", (days,)
    )
    return f"deleted {cur.rowcount} readings older than {days} days"


def delete_listed_readings(conn: psycopg.Connection, keys_table: str) -> int:
    """Delete the readings whose (sensor_id, ts) is a row of the table ``keys_table`` (a
    temporary table of keys, e.g. a file's). In the caller's transaction; rows deleted."""
    return int(conn.execute(sql.SQL(
        "DELETE FROM readings r USING {} s WHERE r.sensor_id = s.sensor_id AND r.ts = s.ts"
    ).format(sql.Identifier(keys_table))).rowcount)


def delete_quarantined(conn: psycopg.Connection, source_patterns: Sequence[str]) -> int:
    """Delete the quarantined rows whose source matches one of the ``LIKE`` patterns. In the
    caller's transaction; rows deleted."""
    return int(conn.execute("DELETE FROM quarantine WHERE source LIKE ANY(%s)",
                            (list(source_patterns),)).rowcount)


def refresh_hourly_span(conn: psycopg.Connection, first: datetime | None,
                        last: datetime | None) -> tuple[datetime, datetime] | None:
    """On TimescaleDB, materialise ``readings_hourly`` over the hours of [first, last] that are
    older than its policy's refresh window (``start_offset`` before now), which the policy never
    revisits: history loaded in bulk. Returns the window refreshed, or None (nothing that old,
    no continuous aggregate or no policy). Needs an autocommit connection."""
    if first is None or last is None or conn.execute(
            "SELECT to_regclass('timescaledb_information.jobs')").fetchone() == (None,):
        return None
    row = conn.execute(
        "SELECT date_trunc('hour', %s::timestamptz), least(date_trunc('hour', "
        "%s::timestamptz) + interval '1 hour', now() - (config->>'start_offset')::interval) "
        "FROM timescaledb_information.jobs WHERE proc_name = "
        "'policy_refresh_continuous_aggregate' AND hypertable_name = 'readings_hourly'",
        (first, last)).fetchone()
    if row is None or row[0] >= row[1]:
        return None
    # The policy's window ends mid-hour: refresh_continuous_aggregate keeps whole buckets.
    conn.execute("CALL refresh_continuous_aggregate('readings_hourly', %s, %s)", row)
    return row[0], row[1]


def refresh_hourly(conn: psycopg.Connection) -> None:
    """On TimescaleDB, recompute the hourly continuous aggregate over all time (its policy only
    refreshes the last days; call after deleting old readings). A view elsewhere: nothing."""
    has_cagg = conn.execute(
        "SELECT to_regclass('timescaledb_information.continuous_aggregates') IS NOT NULL"
    ).fetchone()
    if not (has_cagg and has_cagg[0]):
        return
    if conn.execute("SELECT 1 FROM timescaledb_information.continuous_aggregates "
                    "WHERE view_name = 'readings_hourly'").fetchone():
        conn.execute("CALL refresh_continuous_aggregate('readings_hourly', NULL, NULL)")
