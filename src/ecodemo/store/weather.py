"""Weather observations into the long ``weather`` table (station, ts, variable, value).

Accepts the wide layout of the bundled SYNOP file: ``timestamp,station_id,<variable>...`` with
units in the variable names (``temp_c``, ``cloud_cover_pct``...). Idempotent upsert. The one
writer of ``weather``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql

from ecodemo.errors import InputError


def read_wide_weather(path: Path) -> pd.DataFrame:
    """Wide weather CSV -> long frame (station_id, ts, variable, value), NaNs dropped."""
    try:
        wide = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read weather file: {exc}", source=str(path)) from exc
    for col in ("timestamp", "station_id"):
        if col not in wide.columns:
            raise InputError(f"missing column '{col}'", source=str(path), line=1, field=col)
    ts = pd.to_datetime(wide["timestamp"], utc=True, format="ISO8601", errors="coerce")
    if ts.isna().any():
        line = int(ts.isna().to_numpy().argmax()) + 2
        raise InputError("timestamp is not ISO 8601 with an offset", source=str(path), line=line,
                         field="timestamp")
    wide = wide.assign(ts=ts).drop(columns=["timestamp"])
    long = wide.melt(id_vars=["station_id", "ts"], var_name="variable", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return long.dropna(subset=["value"]).reset_index(drop=True)


def upsert_weather(conn: psycopg.Connection, frame: pd.DataFrame, source: str = "observed") -> int:
    """Upsert a long weather frame. Returns the number of rows written or changed."""
    if frame.empty:
        return 0
    with conn.transaction():
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS _ecodemo_wstage (station_id text, ts timestamptz, "
            "variable text, value float8) ON COMMIT DELETE ROWS"
        )
        with conn.cursor().copy(
            "COPY _ecodemo_wstage (station_id, ts, variable, value) FROM STDIN"
        ) as cp:
            for row in frame[["station_id", "ts", "variable", "value"]].itertuples(index=False):
                cp.write_row(tuple(row))
        cur = conn.execute(
            """INSERT INTO weather (station_id, ts, variable, value, source)
               SELECT DISTINCT ON (station_id, variable, ts) station_id, ts, variable, value, %s
               FROM _ecodemo_wstage ORDER BY station_id, variable, ts
               ON CONFLICT (station_id, variable, ts) DO UPDATE SET value = EXCLUDED.value,
                 source = EXCLUDED.source, ingested_at = now()
               WHERE weather.value IS DISTINCT FROM EXCLUDED.value""",
            (source,),
        )
        return cur.rowcount


def ingest_weather_csv(conn: psycopg.Connection, path: Path, source: str = "observed") -> int:
    return upsert_weather(conn, read_wide_weather(path), source)


def delete_listed_observed(conn: psycopg.Connection, keys_table: str) -> int:
    """Delete the observed weather whose (station_id, ts) is a row of the table ``keys_table``
    (a temporary table of keys, e.g. a file's), every variable. In the caller's transaction;
    rows deleted."""
    return int(conn.execute(sql.SQL(
        "DELETE FROM weather w USING {} s WHERE w.source = 'observed' "
        "AND w.station_id = s.station_id AND w.ts = s.ts").format(sql.Identifier(keys_table))
    ).rowcount)
