"""Load a kind's readings (and weather, when present) from the store into a :class:`Panel`."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import psycopg

from ecodemo.errors import ModelError
from ecodemo.models.features import WEATHER_VARIABLES
from ecodemo.models.issued import IssuedWeather
from ecodemo.models.panel import Panel, SensorMeta, panel_from_long
from ecodemo.store.weather_forecasts import load_forecasts

FORECAST_AHEAD_H = 48.0      # the weather forecasts collected reach this far


def _sensor_metas(conn: psycopg.Connection, kind: str) -> tuple[list[SensorMeta],
                                                                   dict[str, pd.Timedelta],
                                                                   str | None]:
    rows = conn.execute(
        """SELECT s.sensor_id, s.unit, s.resolution, s.timezone, si.latitude, si.longitude,
                  si.weather_station_id
           FROM sensors s JOIN sites si USING (site_id)
           WHERE s.kind = %s AND s.enabled ORDER BY s.sensor_id""", (kind,)).fetchall()
    metas = [SensorMeta(sensor_id=r[0], unit=r[1], timezone=r[3] or "Europe/Paris",
                        latitude=r[4], longitude=r[5]) for r in rows]
    resolutions = {r[0]: pd.Timedelta(r[2]) for r in rows if r[2] is not None}
    stations = [r[6] for r in rows if r[6]]
    station = pd.Series(stations).mode().iloc[0] if stations else None
    return metas, resolutions, station


def _grid_step(resolutions: dict[str, pd.Timedelta], present: set[str]) -> pd.Timedelta | None:
    """The most common declared resolution among the sensors that have readings (a registered
    sensor without data must not set the grid); on a tie the coarsest, so that no sensor's
    readings leave every other step empty."""
    declared = [res for sid, res in resolutions.items() if sid in present]
    if not declared:
        return None
    counts = pd.Series(declared).value_counts()
    return max(counts.index[counts == counts.max()])


def _pick_station(conn: psycopg.Connection, declared: str | None, start: datetime,
                  end: datetime) -> str | None:
    """The sites' declared weather station; else the store's only station, if it covers at
    least half of the readings' period (a station far away in time is no covariate)."""
    if declared:
        return declared
    rows = conn.execute("SELECT DISTINCT station_id FROM weather LIMIT 2").fetchall()
    if len(rows) != 1:
        return None
    station = rows[0][0]
    span = conn.execute(
        "SELECT min(ts), max(ts) FROM weather WHERE station_id = %s AND ts BETWEEN %s AND %s",
        (station, start, end)).fetchone()
    if not span or span[0] is None:
        return None
    covered = (span[1] - span[0]) / max(end - start, timedelta(hours=1))
    return station if covered >= 0.5 else None


def load_weather(conn: psycopg.Connection, station: str, start: datetime,
                 end: datetime) -> pd.DataFrame | None:
    """Wide weather (UTC index, one column per variable) for a station and period."""
    rows = conn.execute(
        """SELECT ts, variable, value FROM weather
           WHERE station_id = %s AND variable = ANY(%s) AND ts BETWEEN %s AND %s""",
        (station, list(WEATHER_VARIABLES), start, end)).fetchall()
    if not rows:
        return None
    long = pd.DataFrame(rows, columns=["ts", "variable", "value"])
    long["ts"] = pd.to_datetime(long["ts"], utc=True)
    wide = long.pivot_table(index="ts", columns="variable", values="value", aggfunc="mean")
    wide.index = pd.DatetimeIndex(wide.index)
    return wide


# Readings come back as one row per sensor holding two byte strings: the timestamps
# (``timestamptz_send``: int64 microseconds since 2000-01-01) and the values (``float8send``),
# both big-endian, concatenated in the same row order by one aggregation. NumPy reads them
# as they are: fetching 2 M readings as Python tuples cost half of a training run at 250
# sensors x 1 year, and a COPY is read one row at a time.
_READINGS_SQL = """
    SELECT s.idx, string_agg(timestamptz_send(r.ts), ''::bytea),
           string_agg(float8send(r.value), ''::bytea)
    FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS s(sensor_id, idx)
    JOIN readings r ON r.sensor_id = s.sensor_id
    WHERE (%(since)s::timestamptz IS NULL OR r.ts >= %(since)s)
      AND (%(until)s::timestamptz IS NULL OR r.ts <= %(until)s)
    GROUP BY s.idx
"""
_PG_EPOCH = pd.Timestamp("2000-01-01", tz="UTC")


def read_readings(conn: psycopg.Connection, sensor_ids: list[str], since: datetime | None,
                  until: datetime | None) -> pd.DataFrame:
    """Readings of ``sensor_ids`` in [since, until] as a frame ``sensor_id`` (categorical),
    ``ts`` (UTC), ``value`` (float64)."""
    rows = conn.execute(_READINGS_SQL, {"ids": sensor_ids, "since": since, "until": until},
                        binary=True).fetchall()
    if not rows:
        return pd.DataFrame({"sensor_id": pd.Categorical([], categories=list(sensor_ids)),
                             "ts": pd.DatetimeIndex([], tz="UTC"), "value": np.array([])})
    codes, stamps, values = [], [], []
    for idx, ts_bytes, value_bytes in rows:
        ts = np.frombuffer(ts_bytes, dtype=">i8")
        codes.append(np.full(len(ts), int(idx) - 1, dtype=np.int64))
        stamps.append(ts)
        values.append(np.frombuffer(value_bytes, dtype=">f8"))
    return pd.DataFrame({
        "sensor_id": pd.Categorical.from_codes(np.concatenate(codes),
                                               categories=list(sensor_ids)),
        "ts": _PG_EPOCH + pd.to_timedelta(np.concatenate(stamps).astype(np.int64), unit="us"),
        "value": np.concatenate(values).astype(np.float64),
    })


def _forecast_station(conn: psycopg.Connection, kind: str, declared: str | None) -> str | None:
    """The station whose forecasts as issued serve ``kind``: the sites' declared station if it
    has some, else the Open-Meteo point of the kind's site with the most forecast rows."""
    row = conn.execute(
        """SELECT f.station_id FROM weather_forecasts f
           WHERE f.station_id = %s OR f.station_id IN (
               SELECT 'open-meteo:' || si.site_id FROM sites si JOIN sensors s USING (site_id)
               WHERE s.kind = %s AND s.enabled)
           GROUP BY f.station_id ORDER BY (f.station_id = %s) DESC, count(*) DESC,
                    f.station_id LIMIT 1""", (declared, kind, declared)).fetchone()
    return row[0] if row else None


def load_panel(conn: psycopg.Connection, kind: str, since: datetime | None = None,
               until: datetime | None = None, observed_ahead_h: float = 48.0) -> Panel:
    """All enabled sensors of ``kind`` on one grid (the sensors' declared resolution), with
    weather when the store has it: the forecasts as issued (at or before ``until``) of the
    kind's station, and the observed weather of the sites' station up to
    ``observed_ahead_h`` hours past the last reading (0 for a forecast of the future: observed
    weather must not stand in for a forecast there)."""
    metas, resolutions, declared = _sensor_metas(conn, kind)
    if not metas:
        raise ModelError(f"no sensors of kind '{kind}' in the store")
    frame = read_readings(conn, [m.sensor_id for m in metas], since, until)
    if frame.empty:
        raise ModelError(f"no readings for kind '{kind}' in the store")
    start, end = frame["ts"].min(), frame["ts"].max()
    station = _pick_station(conn, declared, start, end)
    weather = (load_weather(conn, station, start - timedelta(days=1),
                            end + timedelta(hours=observed_ahead_h)) if station else None)
    issued = None
    fc_station = _forecast_station(conn, kind, declared)
    if fc_station is not None:
        issued = IssuedWeather.from_long(load_forecasts(
            conn, fc_station, list(WEATHER_VARIABLES), start - timedelta(days=1),
            end + timedelta(hours=FORECAST_AHEAD_H), issued_until=until))
    step = _grid_step(resolutions, set(frame["sensor_id"].unique()))
    return panel_from_long(kind, frame, metas, step=step, weather=weather, issued_weather=issued)
