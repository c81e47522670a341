"""The one writer of the ``balances`` table: a service's compute cost against what its forecasts
avoid, per kind, model and period (computed by :mod:`ecodemo.energy.balance`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from ecodemo.store.periods import Period, period_arrays

_UPSERT = """
INSERT INTO balances (kind, model_id, period_start, period_end, evaluated_at, ingest_kwh,
    train_kwh, predict_kwh, compute_kwh, compute_kgco2e, avoided_kwh, avoided_kgco2e, net_kgco2e,
    benefit_cost_ratio, payback_hours, breakeven, method, assumptions)
VALUES (%(kind)s, %(model_id)s, %(period_start)s, %(period_end)s, now(), %(ingest_kwh)s,
    %(train_kwh)s, %(predict_kwh)s, %(compute_kwh)s, %(compute_kgco2e)s, %(avoided_kwh)s,
    %(avoided_kgco2e)s, %(net_kgco2e)s, %(benefit_cost_ratio)s, %(payback_hours)s,
    %(breakeven)s::jsonb, %(method)s, %(assumptions)s::jsonb)
ON CONFLICT (kind, model_id, period_start, period_end) DO UPDATE SET
    evaluated_at = EXCLUDED.evaluated_at, ingest_kwh = EXCLUDED.ingest_kwh,
    train_kwh = EXCLUDED.train_kwh, predict_kwh = EXCLUDED.predict_kwh,
    compute_kwh = EXCLUDED.compute_kwh, compute_kgco2e = EXCLUDED.compute_kgco2e,
    avoided_kwh = EXCLUDED.avoided_kwh, avoided_kgco2e = EXCLUDED.avoided_kgco2e,
    net_kgco2e = EXCLUDED.net_kgco2e, benefit_cost_ratio = EXCLUDED.benefit_cost_ratio,
    payback_hours = EXCLUDED.payback_hours, breakeven = EXCLUDED.breakeven,
    method = EXCLUDED.method, assumptions = EXCLUDED.assumptions
"""


def upsert_balance_row(conn: psycopg.Connection, row: dict[str, Any]) -> None:
    """Insert or replace one balance (``row``: every column but ``evaluated_at``, JSON columns
    as text); commits unless the connection is in autocommit."""
    conn.execute(_UPSERT, row)
    if not conn.autocommit:
        conn.commit()


def delete_balances(conn: psycopg.Connection, *, model_ids: Sequence[str],
                    kinds: Sequence[str], kind_periods: Sequence[Period]) -> int:
    """Delete the balances of these models or kinds, and those of a kind whose period overlaps
    one of ``kind_periods``. In the caller's transaction; rows deleted."""
    return int(conn.execute(
        """DELETE FROM balances t WHERE t.model_id = ANY(%(models)s) OR t.kind = ANY(%(kinds)s)
            OR EXISTS (SELECT 1 FROM unnest(%(period_key)s::text[],
                           %(period_lo)s::timestamptz[], %(period_hi)s::timestamptz[])
                           AS k(key, lo, hi) WHERE k.key = t.kind
                       AND t.period_start <= k.hi AND t.period_end >= k.lo)""",
        {"models": list(model_ids), "kinds": list(kinds),
         **period_arrays(kind_periods)}).rowcount)
