"""What the store already holds, so connectors ask only for newer data (incremental)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import psycopg


def last_reading_ts(conn: psycopg.Connection, sensor_ids: Iterable[str]) -> dict[str, datetime]:
    """Latest stored reading time per sensor (sensors without readings are absent)."""
    ids = list(sensor_ids)
    if not ids:
        return {}
    rows = conn.execute(
        "SELECT sensor_id, max(ts) FROM readings WHERE sensor_id = ANY(%s) GROUP BY sensor_id",
        (ids,),
    ).fetchall()
    return {r[0]: r[1] for r in rows if r[1] is not None}


def last_weather_ts(conn: psycopg.Connection, station_id: str) -> datetime | None:
    row = conn.execute("SELECT max(ts) FROM weather WHERE station_id = %s",
                       (station_id,)).fetchone()
    return row[0] if row else None


def last_grid_ts(conn: psycopg.Connection, zone: str) -> datetime | None:
    row = conn.execute("SELECT max(ts) FROM grid_intensity WHERE zone = %s", (zone,)).fetchone()
    return row[0] if row else None
