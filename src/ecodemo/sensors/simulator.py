"""Seeded, physically plausible synthetic sensor series, vectorised (1,000 sensors x 1 year
hourly = 8.8 M rows in seconds).

Every random draw is a pure function of (seed, sensor id, timestamp): a counter-based hash
(SplitMix64) and random-phase Fourier processes replace a stateful generator. So a timestamp
gets the same value whatever window is asked for, and re-simulating any interval changes
nothing in the store.

- solar (MW): clear-sky GHI from pvlib through ``ecodemo.solar`` (its analytic sun: Spencer
  declination and equation of time, analytical zenith; Haurwitz clear-sky model) at the site's
  coordinates, mid-interval, times a clear-sky index from a cloud process (Kasten-Czeplak:
  k = 1 - 0.75 c^3.4), times capacity and a 0.85 performance ratio.
- wind (MW): a seasonal, diurnal and gusty wind speed at hub height through a generic power
  curve (cut-in 3 m/s, rated 12 m/s, cut-out 25 m/s).
- traffic (vehicles/h) and bike (bicycles/h): commuter peaks on working days, a leisure hump at
  weekends and on French public holidays (``holidays``), an August dip; bikes also drop in rain
  and winter. Counts get Poisson-like noise.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import holidays
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ecodemo.errors import ConfigError
from ecodemo.sensors.params import SimulatorParams
from ecodemo.sensors.state import last_reading_ts
from ecodemo.solar import analytic_zenith_deg, haurwitz_ghi, interval_middles
from ecodemo.store.ingest import IngestCounts, ingest_table, load_sensors

if TYPE_CHECKING:
    import psycopg

    from ecodemo.sensors.catalogue import Catalogue

UNIT_OF_KIND = {"solar": "MW", "wind": "MW", "traffic": "vehicles/h", "bike": "bicycles/h",
                "pedestrian": "pedestrians/h", "transit": "passengers/h"}
DEFAULT_KINDS = ("solar", "wind", "traffic", "bike")
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class SimSensor:
    sensor_id: str
    kind: str
    latitude: float
    longitude: float
    capacity: float | None = None  # MW for solar/wind; peak hourly count for counters


# --------------------------------------------------------------------------- randomness


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 (wrapping arithmetic): a counter-based hash."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _uniform(keys: np.ndarray, t_index: np.ndarray, stream: int) -> np.ndarray:
    """U(0,1) of shape (T, S) from sensor keys (S,) and time counters (T,)."""
    with np.errstate(over="ignore"):
        mixed = (t_index[:, None].astype(np.uint64) * np.uint64(0xD1B54A32D192ED03)) ^ \
            keys[None, :] ^ np.uint64(stream * 0x632BE59BD9B4E019 & 0xFFFFFFFFFFFFFFFF)
    bits = _splitmix(mixed) >> np.uint64(11)
    return (bits.astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def _normal(keys: np.ndarray, t_index: np.ndarray, stream: int) -> np.ndarray:
    """Approximately N(0, 1), shape (T, S): Irwin-Hall sum of four 16-bit uniforms cut from
    one hash (bounded at +-3.5 sigma, which suits measurement noise)."""
    with np.errstate(over="ignore"):
        mixed = (t_index[:, None].astype(np.uint64) * np.uint64(0xD1B54A32D192ED03)) ^ \
            keys[None, :] ^ np.uint64(stream * 0x632BE59BD9B4E019 & 0xFFFFFFFFFFFFFFFF)
    bits = _splitmix(mixed)
    mask = np.uint64(0xFFFF)
    total = (bits & mask).astype(np.float64)
    for shift in (16, 32, 48):
        total += ((bits >> np.uint64(shift)) & mask).astype(np.float64)
    return (total / 65536.0 - 2.0) * np.sqrt(3.0)


def _sensor_keys(ids: Sequence[str], seed: int) -> np.ndarray:
    base = np.array([zlib.crc32(s.encode()) for s in ids], dtype=np.uint64)
    return _splitmix(base ^ _splitmix(np.array([seed], dtype=np.uint64))[0])


def _params(keys: np.ndarray, stream: int, n: int) -> np.ndarray:
    """(n, S) per-sensor uniform parameters."""
    return _uniform(keys, np.arange(n, dtype=np.int64) + (stream << 20), 7919)


def _fourier(t_hours: np.ndarray, keys: np.ndarray, periods_h: Sequence[float],
             stream: int) -> np.ndarray:
    """Smooth random process (T, S), roughly N(0, 1): random-phase sinusoids.

    sin(wt + phi) = sin(wt) cos(phi) + cos(wt) sin(phi): a (T, 2K) time basis times a
    (2K, S) matrix of per-sensor coefficients, one matrix product.
    """
    phases = _params(keys, stream, len(periods_h)) * 2.0 * np.pi  # (K, S)
    amps = 1.0 / np.sqrt(np.arange(1, len(periods_h) + 1))
    amps = amps / np.sqrt((amps**2).sum() / 2.0)
    w = 2.0 * np.pi / np.asarray(periods_h)
    # reduce the angle first: t_hours is ~5e5 h since 1970, keep float precision
    angle = np.mod(t_hours[:, None], np.asarray(periods_h)[None, :]) * w[None, :]
    basis = np.concatenate([np.sin(angle), np.cos(angle)], axis=1)  # (T, 2K)
    coefs = np.concatenate([amps[:, None] * np.cos(phases), amps[:, None] * np.sin(phases)])
    return basis @ coefs


# --------------------------------------------------------------------------- calendar


@dataclass(frozen=True)
class _Calendar:
    times: pd.DatetimeIndex       # UTC
    t_hours: np.ndarray           # hours since epoch (float)
    t_index: np.ndarray           # integer counter per timestamp (for noise)
    local_hour: np.ndarray        # Europe/Paris wall-clock hour, float
    weekday: np.ndarray           # 0 = Monday
    off_day: np.ndarray           # Sunday or French public holiday
    saturday: np.ndarray
    doy: np.ndarray


def _calendar(start: datetime | str, end: datetime | str, freq: str) -> _Calendar:
    def utc(x: datetime | str) -> pd.Timestamp:
        t = pd.Timestamp(x)
        return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")

    times = pd.date_range(utc(start), utc(end), freq=freq, inclusive="left")
    if len(times) == 0:
        raise ConfigError(f"empty simulation window {start} -> {end} at {freq}")
    secs = times.asi8 // 10**9 if times.unit == "ns" else times.as_unit("s").asi8
    t_hours = np.asarray(secs, dtype=np.float64) / 3600.0
    local = times.tz_convert("Europe/Paris")
    fr = holidays.France(years=range(local.year.min(), local.year.max() + 1))
    days = pd.DatetimeIndex(local.tz_localize(None).normalize())
    is_holiday = np.asarray(days.isin(pd.DatetimeIndex(sorted(fr.keys()))))
    weekday = np.asarray(local.weekday)
    return _Calendar(
        times=times, t_hours=t_hours, t_index=np.asarray(secs, dtype=np.int64),
        local_hour=np.asarray(local.hour + local.minute / 60.0, dtype=np.float64),
        weekday=weekday, off_day=(weekday == 6) | is_holiday, saturday=weekday == 5,
        doy=np.asarray(times.dayofyear, dtype=np.float64))


def _gauss(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2)


# --------------------------------------------------------------------------- physics


def _cloud(cal: _Calendar, keys: np.ndarray) -> np.ndarray:
    """Cloud fraction in [0, 1] (T, S): synoptic and diurnal scales, a little noise."""
    z = _fourier(cal.t_hours, keys, (6.0, 11.0, 23.0, 41.0, 73.0, 131.0, 241.0), stream=1)
    z = z + 0.35 * _normal(keys, cal.t_index, 11)
    season = 0.35 * np.cos(2.0 * np.pi * (cal.doy - 15.0) / 365.25)  # cloudier in winter
    return 1.0 / (1.0 + np.exp(-(1.3 * z + season[:, None] + 0.1)))


def solar_mw(cal: _Calendar, sensors: Sequence[SimSensor], keys: np.ndarray) -> np.ndarray:
    lat = np.array([s.latitude for s in sensors])
    lon = np.array([s.longitude for s in sensors])
    cap = np.array([s.capacity or 5.0 for s in sensors])
    ghi = haurwitz_ghi(analytic_zenith_deg(interval_middles(cal.times), lat, lon))
    k = 1.0 - 0.75 * _cloud(cal, keys) ** 3.4
    power = cap[None, :] * (ghi / 1000.0) * k * 0.85
    return np.clip(power, 0.0, cap[None, :])


def wind_mw(cal: _Calendar, sensors: Sequence[SimSensor], keys: np.ndarray) -> np.ndarray:
    cap = np.array([s.capacity or 20.0 for s in sensors])
    site_mean = 6.0 + 2.0 * _params(keys, 3, 1)[0]  # windier sites
    season = 1.4 * np.cos(2.0 * np.pi * (cal.doy - 15.0) / 365.25)
    diurnal = 0.5 * np.cos(2.0 * np.pi * (cal.local_hour - 15.0) / 24.0)
    weather = _fourier(cal.t_hours, keys, (9.0, 19.0, 37.0, 67.0, 109.0, 181.0), stream=2)
    gust = 0.6 * _normal(keys, cal.t_index, 21)
    v = site_mean[None, :] + (season + diurnal)[:, None] + 2.8 * weather + gust
    v = np.maximum(v, 0.0)
    frac = np.clip((v**3 - 27.0) / (12.0**3 - 27.0), 0.0, 1.0)
    frac[v >= 25.0] = 0.0
    return cap[None, :] * frac * 0.97


def _count_profile(cal: _Calendar, kind: str) -> np.ndarray:
    h = cal.local_hour
    if kind == "bike":
        work = 0.05 + 1.0 * _gauss(h, 8.5, 0.9) + 0.85 * _gauss(h, 18.0, 1.3) + \
            0.3 * _gauss(h, 12.8, 1.5)
        rest = 0.04 + 0.45 * _gauss(h, 15.0, 3.0)
    else:
        work = 0.08 + 1.0 * _gauss(h, 8.2, 1.3) + 0.9 * _gauss(h, 17.8, 1.7) + \
            0.55 * _gauss(h, 13.0, 3.0)
        rest = 0.07 + 0.6 * _gauss(h, 14.5, 3.8)
    profile = np.where(cal.off_day, rest, np.where(cal.saturday, 0.5 * (work + rest) + 0.1,
                                                   work))
    august = np.where((cal.doy >= 213) & (cal.doy <= 243), 0.75, 1.0)
    return profile * august


def counts(cal: _Calendar, sensors: Sequence[SimSensor], keys: np.ndarray,
           kind: str) -> np.ndarray:
    default_peak = 250.0 if kind == "bike" else 900.0
    peak = np.array([s.capacity or default_peak for s in sensors])
    peak = peak * (0.6 + 0.8 * _params(keys, 4, 1)[0])
    lam = _count_profile(cal, kind)[:, None] * peak[None, :]
    if kind == "bike":
        rain = np.clip((_cloud(cal, keys) - 0.8) * 5.0, 0.0, 1.0)
        summer = 0.75 + 0.25 * np.cos(2.0 * np.pi * (cal.doy - 196.0) / 365.25)
        lam = lam * (1.0 - 0.55 * rain) * summer[:, None]
    noisy = lam + np.sqrt(lam) * _normal(keys, cal.t_index, 31)
    return np.maximum(np.rint(noisy), 0.0)


# --------------------------------------------------------------------------- public API


def fleet(n_sensors: int, seed: int = 0, kinds: Sequence[str] = DEFAULT_KINDS
          ) -> list[SimSensor]:
    """``n_sensors`` synthetic sensors, kinds in turn, spread over mainland France."""
    if n_sensors < 1:
        raise ConfigError("n_sensors must be at least 1")
    for k in kinds:
        if k not in UNIT_OF_KIND:
            raise ConfigError(f"unknown kind '{k}'")
    rng = np.random.default_rng(seed)
    lat = rng.uniform(43.3, 50.5, n_sensors)
    lon = rng.uniform(-1.3, 7.3, n_sensors)
    out = []
    for i in range(n_sensors):
        kind = kinds[i % len(kinds)]
        cap = {"solar": rng.uniform(1, 20), "wind": rng.uniform(5, 60)}.get(kind)
        out.append(SimSensor(f"sim-{kind}-{i:05d}", kind, float(lat[i]), float(lon[i]),
                             None if cap is None else round(float(cap), 1)))
    return out


def simulate_sensors(sensors: Sequence[SimSensor], start: datetime | str, end: datetime | str,
                     freq: str = "1h", seed: int = 0) -> pa.Table:
    """Long-format Arrow table for the given sensors over [start, end).

    Columns: ``timestamp`` (timestamp[us, UTC]), ``sensor_id`` (dictionary), ``value``
    (float64, in ``unit``), ``unit`` (dictionary). Rows ordered by sensor, then time.
    """
    cal = _calendar(start, end, freq)
    n_t = len(cal.times)
    ids = [s.sensor_id for s in sensors]
    if len(set(ids)) != len(ids):
        raise ConfigError("duplicate sensor ids in the simulation")
    values = np.empty((n_t, len(sensors)))
    by_kind: dict[str, list[int]] = {}
    for i, s in enumerate(sensors):
        if s.kind not in UNIT_OF_KIND:
            raise ConfigError(f"{s.sensor_id}: the simulator has no model for kind '{s.kind}'")
        by_kind.setdefault(s.kind, []).append(i)
    all_keys = _sensor_keys(ids, seed)
    for kind, idx in by_kind.items():
        group = [sensors[i] for i in idx]
        keys = all_keys[idx]
        if kind == "solar":
            values[:, idx] = solar_mw(cal, group, keys)
        elif kind == "wind":
            values[:, idx] = wind_mw(cal, group, keys)
        else:
            values[:, idx] = counts(cal, group, keys, "bike" if kind == "bike" else "traffic")
    ts_us = cal.times.as_unit("us").asi8
    n_s = len(sensors)
    sensor_idx = np.repeat(np.arange(n_s, dtype=np.int32), n_t)
    unit_names = sorted({UNIT_OF_KIND[s.kind] for s in sensors})
    unit_code = np.array([unit_names.index(UNIT_OF_KIND[s.kind]) for s in sensors],
                         dtype=np.int32)
    return pa.table({
        "timestamp": pa.array(np.tile(ts_us, n_s), pa.timestamp("us", tz="UTC")),
        "sensor_id": pa.DictionaryArray.from_arrays(pa.array(sensor_idx), pa.array(ids)),
        "value": pa.array(values.ravel(order="F")),
        "unit": pa.DictionaryArray.from_arrays(pa.array(np.repeat(unit_code, n_t)),
                                               pa.array(unit_names)),
    })


def simulate(n_sensors: int, start: datetime | str, end: datetime | str, freq: str = "1h",
             seed: int = 0, kinds: Sequence[str] = DEFAULT_KINDS) -> pa.Table:
    """``n_sensors`` synthetic sensors (see :func:`fleet`) over [start, end) at ``freq``."""
    return simulate_sensors(fleet(n_sensors, seed, kinds), start, end, freq, seed)


def to_ingest_table(table: pa.Table) -> pa.Table:
    """The string columns :func:`ecodemo.store.ingest.ingest_table` expects."""
    ts = pc.strftime(table.column("timestamp").cast(pa.timestamp("s", tz="UTC")),
                     format="%Y-%m-%dT%H:%M:%S+00:00")
    return pa.table({
        "timestamp": ts,
        "site_id": table.column("sensor_id").cast(pa.string()),
        "value": table.column("value").cast(pa.string()),
        "unit": table.column("unit").cast(pa.string()),
    })


# --------------------------------------------------------------------------- catalogue source


def ingest(conn: psycopg.Connection, cat: Catalogue, source: str, *,
           start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
    """Simulate the source's enabled sensors and store them through validated ingestion.

    Without ``start`` each run continues after the last stored reading (or ``backfill_days``
    back); ``end`` defaults to now, floored to the step. Values depend only on (seed, sensor,
    time), so a rerun of any interval changes nothing.
    """
    p = cat.source_params.get(source)
    if not isinstance(p, SimulatorParams):
        raise ConfigError(f"{cat.path}: source '{source}' is not a simulator source")
    entries = cat.sensors_of(source)
    if not entries:
        raise ConfigError(f"{cat.path}: no enabled sensor uses source '{source}'")
    step = pd.Timedelta(p.freq)
    stop = pd.Timestamp(end) if end is not None else pd.Timestamp.now(tz="UTC").floor(step)
    last = last_reading_ts(conn, [e.sensor_id for e in entries])
    total = IngestCounts()
    sensors = load_sensors(conn)
    groups: dict[pd.Timestamp, list[SimSensor]] = {}
    for e in entries:
        if start is not None:
            begin = pd.Timestamp(start)
        elif e.sensor_id in last:
            begin = pd.Timestamp(last[e.sensor_id]) + step
        else:
            begin = stop - pd.Timedelta(days=p.backfill_days)
        if begin.tzinfo is None:
            begin = begin.tz_localize("UTC")
        groups.setdefault(begin, []).append(SimSensor(
            e.sensor_id, e.site.kind, e.site.latitude, e.site.longitude, e.site.capacity))
    stop = stop.tz_localize("UTC") if stop.tzinfo is None else stop
    for begin, sims in groups.items():
        if begin >= stop:
            continue
        table = simulate_sensors(sims, begin, stop, p.freq, p.seed)
        # the catalogue's unit may differ from the simulator's (kW vs MW): ingestion converts
        total.add(ingest_table(conn, to_ingest_table(table), f"simulator:{source}", sensors))
    return {"source": source, "connector": "simulator",
            **{k: v for k, v in total.as_dict().items() if k != "seconds"}}
