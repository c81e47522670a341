"""The one writer of the ``evaluations`` table (accuracy figures of forecasts).

Rows are keyed by (source, kind, model_name, sensor_id, horizon_h, period_start, period_end):
writing the same evaluation again updates it. ``source`` is 'backtest' (the ladder's rolling-
origin test, :mod:`ecodemo.models.stages`) or 'live' (past forecasts as issued against the
readings, :mod:`ecodemo.energy.accuracy`); ``details`` is free JSON (protocol, day-ahead,
coverage per lead group, weather provenance for backtests).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from ecodemo.store.periods import Period, period_arrays

_UPSERT = """
INSERT INTO evaluations (source, kind, model_name, model_id, sensor_id, horizon_h, period_start,
    period_end, evaluated_at, n, mae, rmse, nmae, skill_vs_seasonal_naive, coverage_p10_p90,
    pinball, details)
VALUES (%(source)s, %(kind)s, %(model_name)s, %(model_id)s, %(sensor_id)s, %(horizon_h)s,
    %(period_start)s, %(period_end)s, now(), %(n)s, %(mae)s, %(rmse)s, %(nmae)s,
    %(skill_vs_seasonal_naive)s, %(coverage_p10_p90)s, %(pinball)s, %(details)s::jsonb)
ON CONFLICT (source, kind, model_name, sensor_id, horizon_h, period_start, period_end)
DO UPDATE SET model_id = EXCLUDED.model_id, evaluated_at = EXCLUDED.evaluated_at,
    n = EXCLUDED.n, mae = EXCLUDED.mae, rmse = EXCLUDED.rmse, nmae = EXCLUDED.nmae,
    skill_vs_seasonal_naive = EXCLUDED.skill_vs_seasonal_naive,
    coverage_p10_p90 = EXCLUDED.coverage_p10_p90, pinball = EXCLUDED.pinball,
    details = EXCLUDED.details
"""
FIELDS = ("n", "mae", "rmse", "nmae", "skill_vs_seasonal_naive", "coverage_p10_p90", "pinball")


def write_evaluations(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> int:
    """Upsert rows (dicts with every column but ``evaluated_at``; ``details`` as JSON text);
    commits unless the connection is in autocommit. Returns the number of rows."""
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(_UPSERT, rows)
    if not conn.autocommit:
        conn.commit()
    return len(rows)


def write_backtest(conn: psycopg.Connection, kind: str, horizon_h: float, start: datetime,
                   end: datetime,
                   rungs: list[tuple[str, str | None, dict[str, dict[str, Any]], dict[str, Any]]],
                   sensor_details: dict[str, dict[str, dict[str, Any]]] | None = None) -> int:
    """One backtest's rows: for each (rung name, model id or None, figures per sensor id,
    details), one row per sensor id (``__all__`` included). ``sensor_details`` (rung name ->
    sensor id -> dict) adds what belongs to one row only, such as its errors per origin."""
    extra = sensor_details or {}
    rows = [{"source": "backtest", "kind": kind, "model_name": name, "model_id": model_id,
             "sensor_id": sid, "horizon_h": horizon_h, "period_start": start,
             "period_end": end, **{k: m.get(k) for k in FIELDS},
             "details": json.dumps({**details, **extra.get(name, {}).get(sid, {})},
                                   default=str)}
            for name, model_id, figures, details in rungs for sid, m in figures.items()]
    return write_evaluations(conn, rows)


def delete_evaluations(conn: psycopg.Connection, *, model_ids: Sequence[str],
                       sensor_ids: Sequence[str], kinds: Sequence[str],
                       kind_periods: Sequence[Period]) -> int:
    """Delete the evaluations of these models, sensors or kinds, and those of a kind whose
    period overlaps one of ``kind_periods``. In the caller's transaction; rows deleted."""
    return int(conn.execute(
        """DELETE FROM evaluations t WHERE t.model_id = ANY(%(models)s)
            OR t.sensor_id = ANY(%(sensors)s) OR t.kind = ANY(%(kinds)s)
            OR EXISTS (SELECT 1 FROM unnest(%(period_key)s::text[],
                           %(period_lo)s::timestamptz[], %(period_hi)s::timestamptz[])
                           AS k(key, lo, hi) WHERE k.key = t.kind
                       AND t.period_start <= k.hi AND t.period_end >= k.lo)""",
        {"models": list(model_ids), "sensors": list(sensor_ids), "kinds": list(kinds),
         **period_arrays(kind_periods)}).rowcount)
