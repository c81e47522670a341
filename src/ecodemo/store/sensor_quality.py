"""The one writer of the ``sensor_quality`` table: one summary row per sensor, replaced by each
quality check (:mod:`ecodemo.sensors.quality`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import psycopg


def upsert_summary(conn: psycopg.Connection, sensor_id: str, *, first_ts: datetime | None,
                   last_ts: datetime | None, n_readings: int, n_gaps: int,
                   longest_gap: timedelta | None, n_flagged: int, n_quarantined: int,
                   flags_json: str) -> None:
    """Replace a sensor's summary (``flags_json``: the check's details as JSON text), checked
    now. In the caller's transaction."""
    conn.execute(
        """INSERT INTO sensor_quality (sensor_id, checked_at, first_ts, last_ts, n_readings,
               n_gaps, longest_gap, n_flagged, n_quarantined, flags)
           VALUES (%s, now(), %s, %s, %s, %s, %s, %s, %s, %s::jsonb)
           ON CONFLICT (sensor_id) DO UPDATE SET checked_at = now(),
             first_ts = EXCLUDED.first_ts, last_ts = EXCLUDED.last_ts,
             n_readings = EXCLUDED.n_readings, n_gaps = EXCLUDED.n_gaps,
             longest_gap = EXCLUDED.longest_gap, n_flagged = EXCLUDED.n_flagged,
             n_quarantined = EXCLUDED.n_quarantined, flags = EXCLUDED.flags""",
        (sensor_id, first_ts, last_ts, n_readings, n_gaps, longest_gap, n_flagged,
         n_quarantined, flags_json))


def delete_summaries(conn: psycopg.Connection, sensor_ids: Sequence[str]) -> int:
    """Delete these sensors' summaries. In the caller's transaction; rows deleted."""
    return int(conn.execute("DELETE FROM sensor_quality WHERE sensor_id = ANY(%s)",
                            (list(sensor_ids),)).rowcount)
