"""The one writer of the ``forecasts`` table: p10/p50/p90 per sensor, model, issue time and
target time. Past forecasts are kept as issued, so accuracy is computed on what was known then.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import psycopg

from ecodemo.store.periods import Period, period_arrays

#: sensor_id, model_id, issued_at, ts, horizon_h, p10, p50, p90
ForecastRow = tuple[str, str, datetime, datetime, float, float, float, float]


def upsert_forecasts(conn: psycopg.Connection, rows: Iterable[ForecastRow]) -> None:
    """Insert forecasts, in one transaction; the same key again replaces the figures."""
    with conn.cursor() as cur, conn.transaction():
        cur.executemany(
            """INSERT INTO forecasts (sensor_id, model_id, issued_at, ts, horizon_h, p10, p50, p90)
               VALUES (%s,%s,%s,%s,%s,%s,%s,%s)
               ON CONFLICT (sensor_id, model_id, issued_at, ts) DO UPDATE SET
                 horizon_h = EXCLUDED.horizon_h, p10 = EXCLUDED.p10, p50 = EXCLUDED.p50,
                 p90 = EXCLUDED.p90""", rows)


def delete_forecasts(conn: psycopg.Connection, *, model_ids: Sequence[str],
                     sensor_ids: Sequence[str], issued_within: Sequence[Period]) -> int:
    """Delete the forecasts of these models or sensors, and those of a sensor issued within
    one of ``issued_within`` (sensor id, first, last). In the caller's transaction; rows
    deleted."""
    return int(conn.execute(
        """DELETE FROM forecasts f WHERE f.model_id = ANY(%(models)s)
            OR f.sensor_id = ANY(%(sensors)s)
            OR EXISTS (SELECT 1 FROM unnest(%(period_key)s::text[],
                           %(period_lo)s::timestamptz[], %(period_hi)s::timestamptz[])
                           AS k(key, lo, hi)
                       WHERE k.key = f.sensor_id AND f.issued_at BETWEEN k.lo AND k.hi)""",
        {"models": list(model_ids), "sensors": list(sensor_ids),
         **period_arrays(issued_within)}).rowcount)
