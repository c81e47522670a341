"""Which kinds the store holds data for: the one answer the CLI, the DAGs, the demo and the
forecasting stages share."""

from __future__ import annotations

import psycopg


def kinds_with_readings(conn: psycopg.Connection) -> list[str]:
    """Kinds with at least one enabled sensor holding readings, alphabetically."""
    rows = conn.execute(
        """SELECT DISTINCT s.kind FROM sensors s
           WHERE s.enabled AND EXISTS (SELECT 1 FROM readings r WHERE r.sensor_id = s.sensor_id)
           ORDER BY s.kind"""
    ).fetchall()
    return [r[0] for r in rows]
