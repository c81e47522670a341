"""Data-quality checks on a sensor's stored history, and the per-sensor summary.

Pure detectors on a time-indexed series (UTC) return boolean masks:
- spikes: far from the median of the same time of day over the surrounding two weeks
  (robust: median absolute deviation, with a floor of a tenth of the typical level);
- flat lines: the same value repeated for a long run (stuck sensor) - zeros get a longer
  allowance, and solar zeros (nights) are ignored;
- unit mix-ups: whole days ~1000x above or below the sensor's usual level (kW sent as MW...);
- impossible values: solar output while the sun is more than 6 degrees below the horizon;
- gaps: steps longer than 1.5x the nominal resolution.
Duplicates, unknown units, DST-ambiguous stamps and out-of-range values are quarantined at
ingestion; their counts come from ``quarantine``. Results go to ``readings.quality_flags``
(check bits, named in ``quality_flag_names``) and ``sensor_quality`` (per sensor), through
those tables' writers (``store.ingest``, ``store.sensor_quality``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from ecodemo.cadence import infer_step
from ecodemo.solar import analytic_elevation_deg
from ecodemo.store.ingest import CHECK_FLAGS_MASK, set_check_flags
from ecodemo.store.sensor_quality import upsert_summary

FLAG_SPIKE = 8
FLAG_FLAT_LINE = 16
FLAG_UNIT_SUSPECT = 64
FLAG_IMPOSSIBLE = 128
CHECK_FLAGS = {FLAG_SPIKE: "spike", FLAG_FLAT_LINE: "flat_line",
               FLAG_UNIT_SUSPECT: "unit_suspect", FLAG_IMPOSSIBLE: "impossible"}
INGEST_FLAGS = {1: "negative_night", 2: "unit_converted", 4: "dst_repeated",
                32: "above_capacity"}


@dataclass
class Thresholds:
    spike_scale: float = 8.0             # robust deviations from the seasonal median
    spike_window_days: int = 15
    flat_hours: float = 6.0              # identical non-zero values for this long = stuck
    flat_zero_hours: float = 24.0        # identical zeros (counts, wind)
    unit_ratio: float = 300.0            # daily level vs usual level
    night_elevation_deg: float = -6.0    # below this, solar output is impossible
    night_tolerance: float = 0.02        # fraction of the series' 99th percentile


# --------------------------------------------------------------------------- detectors (pure)


def find_gaps(index: pd.DatetimeIndex, step: pd.Timedelta) -> list[tuple[pd.Timestamp,
                                                                          pd.Timedelta]]:
    """(start of gap, missing duration) for every step longer than 1.5x ``step``."""
    if len(index) < 2:
        return []
    diffs = index[1:] - index[:-1]
    where = np.flatnonzero(np.asarray(diffs) > np.timedelta64(int(step.value * 1.5), "ns"))
    return [(index[i], pd.Timedelta(diffs[i]) - step) for i in where]


def spikes(s: pd.Series, step: pd.Timedelta, th: Thresholds) -> np.ndarray:
    if len(s) < 48:
        return np.zeros(len(s), bool)
    frame = pd.DataFrame({"v": s.to_numpy()}, index=s.index)
    tod = (s.index - s.index.normalize()).total_seconds().astype(int)
    frame["day"] = s.index.normalize()
    frame["tod"] = tod
    table = frame.pivot_table(index="day", columns="tod", values="v", aggfunc="first")
    table = table.asfreq("D")
    roll = table.rolling(th.spike_window_days, center=True, min_periods=5)
    med = roll.median()
    mad = (table - med).abs().rolling(th.spike_window_days, center=True, min_periods=5).median()
    # floor on the scale: a tenth of the typical non-zero level (robust to a few huge values)
    nonzero = np.abs(s.to_numpy()[s.to_numpy() != 0])
    floor = 0.1 * float(np.median(nonzero)) if len(nonzero) else 0.0
    scale = np.maximum(1.4826 * mad, max(floor, 1e-9))
    dev = ((table - med).abs() / scale).stack()
    dev.index = dev.index.set_names(["day", "tod"])
    keyed = pd.MultiIndex.from_arrays([frame["day"], frame["tod"]])
    score = dev.reindex(keyed).to_numpy()
    return np.nan_to_num(score, nan=0.0) > th.spike_scale


def flat_lines(s: pd.Series, kind: str, th: Thresholds) -> np.ndarray:
    v = s.to_numpy()
    if len(v) < 2:
        return np.zeros(len(v), bool)
    change = np.concatenate([[True], v[1:] != v[:-1]])
    run_id = np.cumsum(change)
    idx = s.index
    starts = pd.Series(idx).groupby(run_id).transform("first")
    ends = pd.Series(idx).groupby(run_id).transform("last")
    duration_h = (ends - starts).dt.total_seconds().to_numpy() / 3600.0
    zero = v == 0
    limit = np.where(zero, th.flat_zero_hours, th.flat_hours)
    if kind == "solar":
        limit = np.where(zero, 24.0 * 3, limit)  # nights are flat zeros; three days is stuck
    return duration_h >= limit


def unit_mixups(s: pd.Series, th: Thresholds) -> np.ndarray:
    nonzero = s[s.abs() > 0]
    if len(nonzero) < 48:
        return np.zeros(len(s), bool)
    usual = float(nonzero.abs().median())
    daily = nonzero.abs().groupby(nonzero.index.normalize()).median()
    bad_days = daily[(daily > usual * th.unit_ratio) | (daily < usual / th.unit_ratio)].index
    return np.asarray(s.index.normalize().isin(bad_days))


def impossible(s: pd.Series, kind: str, latitude: float | None, longitude: float | None,
               step: pd.Timedelta, th: Thresholds) -> np.ndarray:
    if kind != "solar" or latitude is None or longitude is None or len(s) == 0:
        return np.zeros(len(s), bool)
    # judge the middle of each interval (a value stamped 06:00 may cover 06:00-06:30)
    mid = s.index + step / 2
    # the analytic sun (within half a degree of SPA) is ample against a -6 degree threshold
    elev = np.minimum(analytic_elevation_deg(s.index, latitude, longitude),
                      analytic_elevation_deg(mid, latitude, longitude))
    q99 = float(np.nanpercentile(s.to_numpy(), 99))
    return (elev < th.night_elevation_deg) & (s.to_numpy() > th.night_tolerance * q99) & \
        (s.to_numpy() > 0)


@dataclass
class SensorReport:
    sensor_id: str
    n_readings: int
    first_ts: pd.Timestamp | None
    last_ts: pd.Timestamp | None
    step: pd.Timedelta
    gaps: list[tuple[pd.Timestamp, pd.Timedelta]]
    flags: np.ndarray                # check bits per reading
    flag_counts: dict[str, int] = field(default_factory=dict)


def check_series(sensor_id: str, s: pd.Series, *, kind: str, latitude: float | None = None,
                 longitude: float | None = None, resolution: timedelta | None = None,
                 th: Thresholds | None = None) -> SensorReport:
    """Run every detector on one sensor's series (DatetimeIndex UTC, sorted)."""
    th = th or Thresholds()
    s = s.sort_index()
    step = (pd.Timedelta(resolution) if resolution
            else infer_step(s.index) or pd.Timedelta(hours=1))
    flags = np.zeros(len(s), np.int16)
    masks = {FLAG_SPIKE: spikes(s, step, th), FLAG_FLAT_LINE: flat_lines(s, kind, th),
             FLAG_UNIT_SUSPECT: unit_mixups(s, th),
             FLAG_IMPOSSIBLE: impossible(s, kind, latitude, longitude, step, th)}
    for bit, mask in masks.items():
        flags[mask] |= bit
    counts = {name: int(masks[bit].sum()) for bit, name in CHECK_FLAGS.items()}
    return SensorReport(sensor_id, len(s), s.index.min() if len(s) else None,
                        s.index.max() if len(s) else None, step, find_gaps(s.index, step),
                        flags, counts)


# --------------------------------------------------------------------------- store


def check_sensor_in_store(conn: psycopg.Connection, sensor_id: str, *, window_days: int = 400,
                          th: Thresholds | None = None) -> dict[str, Any]:
    """Check one sensor's last ``window_days`` of readings; store flags and the summary."""
    meta = conn.execute(
        """SELECT s.kind, s.resolution, si.latitude, si.longitude
           FROM sensors s JOIN sites si USING (site_id) WHERE s.sensor_id = %s""",
        (sensor_id,)).fetchone()
    if meta is None:
        return {"sensor_id": sensor_id, "status": "unknown sensor"}
    kind, resolution, lat, lon = meta
    rows = conn.execute(
        """SELECT ts, value, quality_flags FROM readings WHERE sensor_id = %s AND ts >
             (SELECT max(ts) FROM readings WHERE sensor_id = %s) - make_interval(days => %s)
           ORDER BY ts""", (sensor_id, sensor_id, window_days)).fetchall()
    q = conn.execute("SELECT reason, count(*) FROM quarantine WHERE sensor_id = %s "
                     "GROUP BY reason", (sensor_id,)).fetchall()
    reasons: dict[str, int] = {}
    for reason, n in q:
        key = reason.split("'")[0].strip() if "'" in reason else reason
        reasons[key] = reasons.get(key, 0) + int(n)
    n_quarantined = sum(reasons.values())
    if rows:
        idx = pd.DatetimeIndex([r[0] for r in rows]).tz_convert("UTC")
        s = pd.Series([float(r[1]) for r in rows], index=idx)
        ingest_flags = np.array([r[2] for r in rows], dtype=np.int16)
        rep = check_series(sensor_id, s, kind=kind, latitude=lat, longitude=lon,
                           resolution=resolution, th=th)
    else:
        s = pd.Series(dtype=float)
        ingest_flags = np.zeros(0, np.int16)
        rep = SensorReport(sensor_id, 0, None, None, pd.Timedelta(resolution or
                                                                     timedelta(hours=1)),
                           [], np.zeros(0, np.int16), {n: 0 for n in CHECK_FLAGS.values()})
    counts = dict(rep.flag_counts)
    for bit, name in INGEST_FLAGS.items():
        counts[name] = int(((ingest_flags & bit) != 0).sum())
    counts["duplicates_quarantined"] = sum(n for r, n in reasons.items()
                                           if r.startswith("duplicate"))
    counts["dst_quarantined"] = sum(n for r, n in reasons.items() if "DST" in r)
    counts["unit_quarantined"] = sum(n for r, n in reasons.items() if "unit" in r)
    longest = max((g[1] for g in rep.gaps), default=None)
    ingest_flags = ingest_flags & ~np.int16(CHECK_FLAGS_MASK)
    n_flagged = int(((rep.flags != 0) | (ingest_flags != 0)).sum())
    status = "no data" if rep.n_readings == 0 else (
        "check" if (counts["spike"] or counts["flat_line"] or counts["unit_suspect"]
                    or counts["impossible"] or len(rep.gaps)) else "ok")
    summary = {"status": status, "kind": kind, "step_s": rep.step.total_seconds(),
               "window_days": window_days, **counts, "quarantine_reasons": reasons,
               "largest_gaps": [{"after": g[0].isoformat(), "missing_h":
                                 round(g[1].total_seconds() / 3600, 2)}
                                for g in sorted(rep.gaps, key=lambda g: -g[1])[:5]]}
    flagged = np.flatnonzero(rep.flags)
    with conn.transaction():
        # recompute the check bits over the window: clear, then set where found
        set_check_flags(conn, sensor_id, s.index.min().to_pydatetime() if len(s) else None,
                        [(s.index[i].to_pydatetime(), int(rep.flags[i])) for i in flagged])
        upsert_summary(
            conn, sensor_id,
            first_ts=rep.first_ts.to_pydatetime() if rep.first_ts is not None else None,
            last_ts=rep.last_ts.to_pydatetime() if rep.last_ts is not None else None,
            n_readings=rep.n_readings, n_gaps=len(rep.gaps),
            longest_gap=longest.to_pytimedelta() if longest is not None else None,
            n_flagged=n_flagged, n_quarantined=n_quarantined, flags_json=json.dumps(summary))
    return {"sensor_id": sensor_id, "n_readings": rep.n_readings,
            "first_ts": rep.first_ts.isoformat() if rep.first_ts is not None else None,
            "last_ts": rep.last_ts.isoformat() if rep.last_ts is not None else None,
            "n_gaps": len(rep.gaps),
            "longest_gap_h": round(longest.total_seconds() / 3600, 2) if longest is not None
            else None, "n_flagged": n_flagged, "n_quarantined": n_quarantined, **summary}
