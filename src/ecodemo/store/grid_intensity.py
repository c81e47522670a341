"""The one writer of ``grid_intensity`` (gCO2e/kWh per zone and instant), and its one limit.

The sensors' connectors (validation, quarantine) and the energy area's éCO2mix parser both
store through :func:`upsert_grid_intensity`, so the table has a single upsert and a single
plausibility bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import psycopg

#: Above any real grid's average intensity (coal-only grids are about 1,000-1,100 g/kWh);
#: values above it, or below 0, are rejected by every reader of a source.
MAX_G_PER_KWH = 2_000.0


def plausible_g_per_kwh(value: float) -> bool:
    """True for a finite intensity within 0..MAX_G_PER_KWH gCO2e/kWh."""
    return value == value and 0.0 <= value <= MAX_G_PER_KWH  # NaN fails the first test


def upsert_grid_intensity(conn: psycopg.Connection, points: Iterable[tuple[str, datetime, float]],
                          source: str) -> int:
    """Upsert (zone, ts, g_per_kwh) points with their source; returns rows inserted or changed.

    Runs in the caller's transaction (the caller commits): the sensors' writer pairs it with
    the quarantine of the rows it rejected.
    """
    pts = list(points)
    if not pts:
        return 0
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO grid_intensity (zone, ts, g_per_kwh, source)
               SELECT z, t, g, %s
               FROM unnest(%s::text[], %s::timestamptz[], %s::float8[]) AS u(z, t, g)
               ON CONFLICT (zone, ts) DO UPDATE
                 SET g_per_kwh = EXCLUDED.g_per_kwh, source = EXCLUDED.source
                 WHERE (grid_intensity.g_per_kwh, grid_intensity.source)
                       IS DISTINCT FROM (EXCLUDED.g_per_kwh, EXCLUDED.source)""",
            (source, [p[0] for p in pts], [p[1] for p in pts], [float(p[2]) for p in pts]))
        return max(cur.rowcount, 0)
