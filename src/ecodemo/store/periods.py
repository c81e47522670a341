"""Periods of a kind or a sensor passed to SQL as three arrays (one statement, any number of
periods), for the writers that delete what falls in them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

#: (kind or sensor id, first timestamp, last timestamp): a period of one kind or sensor.
Period = tuple[str, datetime, datetime]


def period_arrays(periods: Sequence[Period]) -> dict[str, list[Any]]:
    """``periods`` as three arrays, read in SQL as rows ``k(key, lo, hi)`` by
    ``unnest(%(period_key)s::text[], %(period_lo)s::timestamptz[], %(period_hi)s::timestamptz[])
    AS k(key, lo, hi)``."""
    return {"period_key": [p[0] for p in periods], "period_lo": [p[1] for p in periods],
            "period_hi": [p[2] for p in periods]}

