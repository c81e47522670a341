"""Accuracy of past forecasts as issued (``evaluations`` rows with source 'live').

Each forecast is joined to the reading at its target time. Its seasonal-naive counterpart is the
reading one or more whole seasons before the target, the latest such reading **at or before the
issue time** (so the baseline only uses what was known when the forecast was issued). Seasons:
24 h for solar and wind, 168 h (one week) for transport kinds.

Metrics, in the sensor's unit: MAE, RMSE, nMAE (MAE / mean |actual|), coverage of the p10-p90
band (share of actuals inside it), pinball loss (mean over quantiles 0.1, 0.5, 0.9), and skill
versus seasonal naive (1 - MAE model / MAE naive, on the rows where the naive value exists).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from ecodemo.cadence import season_hours, season_table
from ecodemo.store.evaluations import write_evaluations as write_evaluations

ALL_SENSORS = "__all__"


# The readings are bounded by constants (the forecasts' target span, found first): a join on
# ``r.ts = f.ts`` alone gives TimescaleDB no chunk to exclude, and the planner then merge-joins
# the whole hypertable, decompressing and sorting every chunk (68.6 s at 8.76 M readings, for
# 48,000 forecasts whose targets fall in one chunk).
_FILTERS = """
WHERE f.issued_at < f.ts
  AND (%(start)s::timestamptz IS NULL OR f.ts >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR f.ts < %(end)s)
  AND (%(kind)s::text IS NULL OR s.kind = %(kind)s)
"""

_SPAN = """
SELECT min(f.ts), max(f.ts), max(f.ts - f.issued_at)
FROM forecasts f JOIN sensors s ON s.sensor_id = f.sensor_id
""" + _FILTERS  # noqa: S608 (constant SQL text, values are parameters)

_JOINED = """
SELECT f.sensor_id, s.kind, s.unit, f.model_id,
       coalesce(m.name, f.model_id) AS model_name, m.version,
       f.issued_at, f.ts, f.horizon_h::float8 AS horizon_h, f.p10, f.p50, f.p90,
       r.value AS actual, nv.value AS naive
FROM forecasts f
JOIN sensors s ON s.sensor_id = f.sensor_id
JOIN readings r ON r.sensor_id = f.sensor_id AND r.ts = f.ts
    AND r.ts BETWEEN %(ts_lo)s AND %(ts_hi)s
LEFT JOIN models m ON m.model_id = f.model_id
CROSS JOIN LATERAL (  -- the season of ecodemo.cadence.season_hours, passed as two arrays
    SELECT coalesce((SELECT t.season_h FROM unnest(%(season_kinds)s::text[],
                                                   %(season_h)s::int[]) AS t(kind, season_h)
                     WHERE t.kind = s.kind), %(season_other_h)s) AS season_h) se
LEFT JOIN readings nv ON nv.sensor_id = f.sensor_id
    AND nv.ts = f.ts - make_interval(hours => se.season_h * greatest(1, ceil(
        extract(epoch FROM (f.ts - f.issued_at)) / 3600.0 / se.season_h))::int)
    AND nv.ts BETWEEN %(naive_lo)s AND %(ts_hi)s
""" + _FILTERS  # noqa: S608 (constant SQL text, values are parameters)


def forecasts_with_actuals(conn: psycopg.Connection, start: datetime | None = None,
                           end: datetime | None = None, kind: str | None = None) -> pd.DataFrame:
    """Past forecasts whose target time has a reading, with the seasonal-naive value."""
    kinds, hours = season_table()
    params: dict[str, Any] = {"start": start, "end": end, "kind": kind}
    span = conn.execute(_SPAN, params).fetchone()
    ts_lo, ts_hi, max_lead = span if span else (None, None, None)
    # The naive value lies at most one season plus the lead time before the target (a lead
    # shorter than a season looks back one season, a longer one whole seasons past the issue).
    longest_season = timedelta(hours=max([*hours, season_hours("")]))
    naive_lo = ts_lo - max_lead - longest_season if ts_lo is not None else None
    cur = conn.execute(_JOINED, {**params, "season_kinds": kinds, "season_h": hours,
                                 "season_other_h": season_hours(""), "ts_lo": ts_lo,
                                 "ts_hi": ts_hi, "naive_lo": naive_lo})
    cols = [d.name for d in cur.description or []]
    frame = pd.DataFrame(cur.fetchall(), columns=cols)
    for c in ("p10", "p50", "p90", "actual", "naive", "horizon_h"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    return frame


def _pinball(actual: np.ndarray, pred: np.ndarray, q: float) -> np.ndarray:
    diff = actual - pred
    return np.maximum(q * diff, (q - 1) * diff)


@dataclass(frozen=True)
class Metrics:
    n: int
    mae: float | None
    rmse: float | None
    nmae: float | None
    skill: float | None
    coverage: float | None
    pinball: float | None
    mae_naive: float | None
    n_naive: int

    def details(self) -> dict[str, Any]:
        return {"mae_seasonal_naive": self.mae_naive, "n_with_naive": self.n_naive}


def _f(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def metrics(g: pd.DataFrame) -> Metrics:
    """Metrics of one group of joined rows (same unit)."""
    a, p = g["actual"].to_numpy(), g["p50"].to_numpy()
    err = np.abs(a - p)
    mae = float(err.mean())
    rmse = float(np.sqrt(((a - p) ** 2).mean()))
    mean_abs = float(np.abs(a).mean())
    band = g[["p10", "p90"]].notna().all(axis=1).to_numpy()
    coverage = pinball = None
    if band.any():
        lo, hi, ab = g["p10"].to_numpy()[band], g["p90"].to_numpy()[band], a[band]
        coverage = float(((ab >= lo) & (ab <= hi)).mean())
        pinball = float(np.mean([_pinball(ab, lo, 0.1).mean(), _pinball(ab, p[band], 0.5).mean(),
                                 _pinball(ab, hi, 0.9).mean()]))
    has_naive = g["naive"].notna().to_numpy()
    mae_naive = skill = None
    if has_naive.any():
        mae_naive = float(np.abs(a[has_naive] - g["naive"].to_numpy()[has_naive]).mean())
        mae_on_naive_rows = float(err[has_naive].mean())
        skill = 1.0 - mae_on_naive_rows / mae_naive if mae_naive > 0 else None
    return Metrics(n=len(g), mae=_f(mae), rmse=_f(rmse),
                   nmae=_f(mae / mean_abs) if mean_abs > 0 else None, skill=skill,
                   coverage=coverage, pinball=pinball, mae_naive=mae_naive,
                   n_naive=int(has_naive.sum()))


def _model_labels(frame: pd.DataFrame) -> pd.Series:
    """The rung name, or name@model_id when several versions of a rung are evaluated together."""
    versions = frame.groupby(["kind", "model_name"])["model_id"].transform("nunique")
    return frame["model_name"].where(versions <= 1,
                                     frame["model_name"] + "@" + frame["model_id"])


def live_evaluation_rows(frame: pd.DataFrame, period_start: datetime,
                         period_end: datetime) -> list[dict[str, Any]]:
    """One row per (model, kind, sensor or '__all__', horizon), ready for ``evaluations``."""
    if frame.empty:
        return []
    frame = frame.assign(label=_model_labels(frame))
    rows: list[dict[str, Any]] = []
    for (model_id, label, kind, horizon), g in frame.groupby(
            ["model_id", "label", "kind", "horizon_h"], sort=True):
        season = season_hours(str(kind))
        per_sensor = []
        for sensor, gs in g.groupby("sensor_id", sort=True):
            m = metrics(gs)
            per_sensor.append(m)
            rows.append(_row(model_id, label, kind, sensor, horizon, period_start, period_end,
                             m, {**m.details(), "unit": gs["unit"].iloc[0],
                                 "season_h": season}))
        units = g["unit"].unique()
        m_all = metrics(g)
        details: dict[str, Any] = {**m_all.details(), "season_h": season,
                                   "sensors": int(g["sensor_id"].nunique())}
        if len(units) > 1:
            # Absolute errors in different units do not add up: keep only relative figures.
            nmaes = [m.nmae for m in per_sensor if m.nmae is not None]
            m_all = Metrics(n=m_all.n, mae=None, rmse=None,
                            nmae=float(np.mean(nmaes)) if nmaes else None, skill=m_all.skill,
                            coverage=m_all.coverage, pinball=None, mae_naive=None,
                            n_naive=m_all.n_naive)
            details.update(mae_seasonal_naive=None,
                           note=f"mixed units {sorted(units)}: nMAE is the mean over sensors")
        else:
            details["unit"] = units[0]
        rows.append(_row(model_id, label, kind, ALL_SENSORS, horizon, period_start, period_end,
                         m_all, details))
    return rows


def _row(model_id: str, label: str, kind: str, sensor: str, horizon: float,
         start: datetime, end: datetime, m: Metrics, details: dict[str, Any]) -> dict[str, Any]:
    return {"source": "live", "kind": kind, "model_name": label, "model_id": model_id,
            "sensor_id": sensor, "horizon_h": float(horizon), "period_start": start,
            "period_end": end, "n": m.n, "mae": m.mae, "rmse": m.rmse, "nmae": m.nmae,
            "skill_vs_seasonal_naive": m.skill, "coverage_p10_p90": m.coverage,
            "pinball": m.pinball, "details": json.dumps(details, default=str)}


@dataclass(frozen=True)
class SensorError:
    """Pooled (all horizons) error of a model and of the baseline on one sensor."""

    sensor_id: str
    unit: str
    mae_model: float
    mae_baseline: float
    n: int


def pooled_live_errors(frame: pd.DataFrame, model_id: str) -> list[SensorError]:
    """Per sensor, MAE of the model and of seasonal naive on the same rows (all horizons)."""
    g = frame[(frame["model_id"] == model_id) & frame["naive"].notna()]
    out = []
    for sensor, gs in g.groupby("sensor_id", sort=True):
        a = gs["actual"].to_numpy()
        out.append(SensorError(
            sensor_id=str(sensor), unit=str(gs["unit"].iloc[0]),
            mae_model=float(np.abs(a - gs["p50"].to_numpy()).mean()),
            mae_baseline=float(np.abs(a - gs["naive"].to_numpy()).mean()), n=len(gs)))
    return out
