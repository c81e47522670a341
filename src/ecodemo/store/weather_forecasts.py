"""Weather forecasts as issued (table ``weather_forecasts``, migration 011): the one writer.

Rows are (station_id, variable, issued_at, valid_at, value, source). A forecast is stored as it
was issued and never overwritten: inserting a key that exists changes nothing, so what the
store says was known at time T stays what was known at T.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import psycopg

COLUMNS = ["station_id", "variable", "issued_at", "valid_at", "value"]


def insert_forecasts(conn: psycopg.Connection, frame: pd.DataFrame, source: str) -> int:
    """Insert a long frame with ``COLUMNS`` (times UTC; rows valid before their issue time are
    dropped). Existing keys are kept as they are. Returns the number of rows inserted."""
    if frame.empty:
        return 0
    rows = frame[frame["valid_at"] >= frame["issued_at"]][COLUMNS]
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS _ecodemo_wfstage (station_id text, "
                    "variable text, issued_at timestamptz, valid_at timestamptz, value float8) "
                    "ON COMMIT DELETE ROWS")
        with cur.copy("COPY _ecodemo_wfstage (station_id, variable, issued_at, valid_at, value) "
                      "FROM STDIN") as cp:
            for row in rows.itertuples(index=False):
                cp.write_row(tuple(row))
        cur.execute(
            """INSERT INTO weather_forecasts (station_id, variable, issued_at, valid_at, value,
                   source)
               SELECT DISTINCT ON (station_id, variable, issued_at, valid_at) station_id,
                   variable, issued_at, valid_at, value, %s
               FROM _ecodemo_wfstage ORDER BY station_id, variable, issued_at, valid_at
               ON CONFLICT (station_id, variable, issued_at, valid_at) DO NOTHING""", (source,))
        return cur.rowcount


def load_forecasts(conn: psycopg.Connection, station: str, variables: list[str],
                   start: datetime, end: datetime,
                   issued_until: datetime | None = None) -> pd.DataFrame:
    """Forecasts of ``station`` valid in [start, end] (issued at or before ``issued_until``
    when given), long frame with ``COLUMNS`` minus station_id, times UTC."""
    rows = conn.execute(
        """SELECT variable, issued_at, valid_at, value FROM weather_forecasts
           WHERE station_id = %s AND variable = ANY(%s) AND valid_at BETWEEN %s AND %s
             AND (%s::timestamptz IS NULL OR issued_at <= %s)""",
        (station, variables, start, end, issued_until, issued_until)).fetchall()
    frame = pd.DataFrame(rows, columns=["variable", "issued_at", "valid_at", "value"])
    for col in ("issued_at", "valid_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    frame["value"] = frame["value"].astype(float)
    return frame


def stations_with_forecasts(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT DISTINCT station_id FROM weather_forecasts")}
