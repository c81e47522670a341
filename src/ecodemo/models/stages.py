"""Stage functions for the CLI and Airflow: ladder (backtest + choice), train, forecast.

Each takes an explicit Settings and returns a JSON-able dict. Every training and prediction run
is wrapped by the energy tracker (stages "train", "predict", "backtest"), so each leaves a
``compute_runs`` row; the ladder reads the measured energy of those runs.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from ecodemo.config import Settings
from ecodemo.errors import ModelError
from ecodemo.metering import track_run, warm_up
from ecodemo.models import data, registry
from ecodemo.models.forecaster import Forecaster, gather, make_point
from ecodemo.models.ladder import choose
from ecodemo.models.lgbm import LgbmForecaster
from ecodemo.models.metrics import ALL, score
from ecodemo.models.panel import Panel
from ecodemo.models.specs import load_ladder_spec
from ecodemo.store.connection import open_database

log = logging.getLogger(__name__)

MIN_TRAIN_DAYS = 28          # history required before the first backtest origin
FORECAST_HISTORY_DAYS = 16   # readings a forecast needs: 48 h lags + 8 days of daily slots
WEATHER_NOTE = ("weather covariates: observed weather at the target time stands in for a "
                "weather forecast in this backtest (an optimistic assumption)")

_warmed: set[str] = set()


def _warm(settings: Settings) -> None:
    """Pay the energy tracker's start-up once per process, before the first measured run."""
    key = str(settings.state_dir)
    if key not in _warmed:
        warm_up(settings)
        _warmed.add(key)


def kinds_with_data(settings: Settings) -> list[str]:
    with open_database(settings).connect() as conn:
        return data.kinds_with_data(conn)


def backtest_origins(panel: Panel, horizon_steps: int, folds: int, every: int) -> np.ndarray:
    """Rolling origins (grid indices), the last one ``horizon_steps`` before the last reading,
    ``every`` steps apart, keeping at least MIN_TRAIN_DAYS of history before the first."""
    last = panel.last_observed_index()
    observed = np.flatnonzero(np.isfinite(panel.values).any(axis=1))
    first = int(observed[0])
    room = last - horizon_steps - first - panel.steps_for_hours(24 * MIN_TRAIN_DAYS)
    n = min(folds, room // every + 1) if room >= 0 else 0
    if n < 1:
        raise ModelError(f"kind '{panel.kind}': not enough history for a backtest "
                         f"(need {MIN_TRAIN_DAYS} days plus the horizon)")
    return last - horizon_steps - every * np.arange(n - 1, -1, -1)


def _upsert_evaluations(conn: psycopg.Connection, kind: str, name: str, model_id: str | None,
                        horizon_h: float, start: datetime, end: datetime,
                        figures: dict[str, dict[str, Any]], details: dict[str, Any]) -> None:
    rows = [(kind, name, model_id, sid, horizon_h, start, end, m["n"], m["mae"], m["rmse"],
             m["nmae"], m["skill_vs_seasonal_naive"], m["coverage_p10_p90"], m["pinball"],
             json.dumps(details, default=str)) for sid, m in figures.items()]
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO evaluations (source, kind, model_name, model_id, sensor_id, horizon_h,
                   period_start, period_end, n, mae, rmse, nmae, skill_vs_seasonal_naive,
                   coverage_p10_p90, pinball, details)
               VALUES ('backtest',%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::jsonb)
               ON CONFLICT (source, kind, model_name, sensor_id, horizon_h, period_start,
                            period_end)
               DO UPDATE SET model_id = EXCLUDED.model_id, evaluated_at = now(), n = EXCLUDED.n,
                   mae = EXCLUDED.mae, rmse = EXCLUDED.rmse, nmae = EXCLUDED.nmae,
                   skill_vs_seasonal_naive = EXCLUDED.skill_vs_seasonal_naive,
                   coverage_p10_p90 = EXCLUDED.coverage_p10_p90, pinball = EXCLUDED.pinball,
                   details = EXCLUDED.details""", rows)


def _features_and_params(f: Forecaster) -> tuple[list[str], dict[str, Any]]:
    if isinstance(f.point, LgbmForecaster):
        spec = f.point.spec
        return list(f.point.features), {"num_boost_round": spec.num_boost_round,
                                        "buckets_h": list(spec.buckets_h),
                                        "feature_set": spec.feature_set,
                                        "max_rows": spec.max_rows, **spec.params}
    return [], {"baseline": f.name}


def run_ladder(settings: Settings, kind: str, horizon_h: float = 24,
               folds: int | None = None, tolerance: float | None = None,
               rungs: list[str] | None = None) -> dict[str, Any]:
    """Backtest every rung on the store's data for ``kind``, choose, record, register.

    Rolling origin: every rung is trained once on data up to the first origin (the last
    ``folds`` x ``every_h`` hours are never seen in training), then issues a forecast at each
    origin for leads 1..horizon, reading only data up to that origin. Metrics are over all
    leads of all origins. Returns the backtest JSON of the issue (plus ``notes``).
    ``rungs`` restricts the ladder to some rungs (seasonal_naive is always kept: skill needs it).
    """
    spec = load_ladder_spec()
    if rungs is not None:
        unknown = set(rungs) - set(spec["rungs"])
        if unknown:
            raise ModelError(f"unknown rung(s) {', '.join(sorted(unknown))}")
        keep = set(rungs) | {"seasonal_naive"}
        spec["rungs"] = {k: v for k, v in spec["rungs"].items() if k in keep}
    folds = int(folds or spec["backtest"]["folds"])
    tol = float(spec["tolerance"] if tolerance is None else tolerance)
    _warm(settings)
    db = open_database(settings)
    with db.connect(autocommit=True) as conn:
        panel = data.load_panel(conn, kind)
    n_steps = panel.steps_for_hours(horizon_h)
    every = panel.steps_for_hours(spec["backtest"]["every_h"])
    origins = backtest_origins(panel, n_steps, folds, every)
    train_end = int(origins[0])
    actual = gather(panel.values, origins, n_steps)
    results: list[dict[str, Any]] = []
    preds: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    fitted: dict[str, Forecaster] = {}
    train_run_ids: dict[str, str] = {}
    for name, rung in spec["rungs"].items():
        point = make_point(name, rung or {}, num_threads=settings.num_threads,
                           horizon_h=horizon_h)
        f = Forecaster(point, horizon_h=horizon_h, cal_days=spec["calibration"]["days"],
                       cal_every_h=spec["calibration"]["every_h"],
                       err_days=spec["calibration"]["recent_error_days"])
        with track_run(settings, "train", sensor_kind=kind,
                       details={"rung": name, "purpose": "ladder backtest"}) as tr:
            f.fit(panel, train_end)
        with track_run(settings, "predict", sensor_kind=kind,
                       details={"rung": name, "purpose": "ladder backtest",
                                "origins": len(origins), "leads": n_steps}) as pr:
            preds[name] = f.predict(panel, origins, n_steps)
        fitted[name] = f
        train_run_ids[name] = tr.run_id
        results.append({"name": name, "train_seconds": tr.duration_s,
                        "train_energy_kwh": tr.energy_kwh, "predict_seconds": pr.duration_s,
                        "predict_energy_kwh": pr.energy_kwh})
    start = panel.times[int(origins[0]) + 1].to_pydatetime()
    end = panel.times[min(int(origins[-1]) + n_steps, len(panel.times) - 1)].to_pydatetime()
    with_weather = any(isinstance(f.point, LgbmForecaster) and f.point.with_weather
                       for f in fitted.values())
    notes = [f"nMAE = MAE / mean(|actual|) per sensor; '{ALL}' averages sensors equally",
             f"tolerance {tol:.0%} relative: eligible if nMAE <= best nMAE x (1 + {tol:g})",
             f"trained on data up to {panel.times[train_end].isoformat()}; "
             f"{len(origins)} origins every {spec['backtest']['every_h']} h, leads 1..{n_steps} "
             f"steps of {panel.step}"]
    if with_weather:
        notes.append(WEATHER_NOTE)
    details = {"folds": len(origins), "every_h": spec["backtest"]["every_h"],
               "train_end": panel.times[train_end].isoformat(), "notes": notes}
    with track_run(settings, "backtest", sensor_kind=kind,
                   details={"rungs": list(spec["rungs"]), "folds": len(origins)}):
        reference = preds["seasonal_naive"][1]
        per_rung: dict[str, dict[str, dict[str, Any]]] = {}
        for r in results:
            p10, p50, p90 = preds[r["name"]]
            figures = score(actual, p10, p50, p90, reference, panel.sensor_ids)
            per_rung[r["name"]] = figures
            r.update({k: figures[ALL][k] for k in ("mae", "rmse", "nmae",
                                                   "skill_vs_seasonal_naive",
                                                   "coverage_p10_p90")})
        chosen, reason = choose(results, tol)
        with db.connect(autocommit=True) as conn:
            f = fitted[chosen]
            feats, params = _features_and_params(f)
            c = next(r for r in results if r["name"] == chosen)
            row = registry.register(
                conn, settings, kind, f, data_sha256=panel.data_sha256(train_end),
                metrics={**per_rung[chosen], "backtest": details},
                train_seconds=c["train_seconds"], train_energy_kwh=c["train_energy_kwh"],
                energy={"train_kwh": c["train_energy_kwh"],
                        "predict_kwh": c["predict_energy_kwh"]},
                features=feats, params=params)
            # The chosen rung's training run is this candidate's training: link it, so the
            # balance finds what the model cost to train.
            conn.execute("UPDATE compute_runs SET model_id = %s WHERE run_id = %s",
                         (row.model_id, train_run_ids[chosen]))
            for r in results:
                _upsert_evaluations(conn, kind, r["name"],
                                    row.model_id if r["name"] == chosen else None, horizon_h,
                                    start, end, per_rung[r["name"]], details)
            conn.execute(
                """INSERT INTO model_choices (kind, chosen_name, model_id, tolerance, reason,
                       candidates) VALUES (%s,%s,%s,%s,%s,%s::jsonb)""",
                (kind, chosen, row.model_id, tol, reason, json.dumps(results, default=str)))
    models = [{k: r.get(k) for k in ("name", "mae", "rmse", "nmae", "skill_vs_seasonal_naive",
                                      "coverage_p10_p90", "train_seconds", "train_energy_kwh",
                                      "predict_energy_kwh")} for r in results]
    return {"kind": kind, "horizon_hours": horizon_h, "sensors": len(panel.sensors),
            "folds": len(origins), "models": models, "chosen": chosen, "reason": reason,
            "notes": notes}


def _chosen_rung(conn: psycopg.Connection, kind: str, default: str) -> str:
    r = conn.execute("SELECT chosen_name FROM model_choices WHERE kind = %s "
                     "ORDER BY decided_at DESC, id DESC LIMIT 1", (kind,)).fetchone()
    return r[0] if r else default


def _latest_backtest(conn: psycopg.Connection, kind: str, name: str) -> dict[str, Any]:
    r = conn.execute(
        """SELECT horizon_h, period_start, period_end, n, mae, rmse, nmae,
                  skill_vs_seasonal_naive, coverage_p10_p90, pinball FROM evaluations
           WHERE source = 'backtest' AND kind = %s AND model_name = %s AND sensor_id = %s
           ORDER BY evaluated_at DESC LIMIT 1""", (kind, name, ALL)).fetchone()
    if r is None:
        return {}
    keys = ("horizon_h", "period_start", "period_end", "n", "mae", "rmse", "nmae",
            "skill_vs_seasonal_naive", "coverage_p10_p90", "pinball")
    return {ALL: {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                  for k, v in zip(keys, r, strict=True)}}


def train(settings: Settings, kind: str, promote: bool = True,
          rung: str | None = None, horizon_h: float = 48) -> dict[str, Any]:
    """Train the ladder's chosen rung (or ``rung``; else the spec's default) on all data of
    ``kind``, register it, and promote it unless ``promote`` is False."""
    spec = load_ladder_spec()
    _warm(settings)
    db = open_database(settings)
    with db.connect(autocommit=True) as conn:
        name = rung or _chosen_rung(conn, kind, spec["default"])
        if name not in spec["rungs"]:
            raise ModelError(f"unknown rung '{name}' (known: {', '.join(spec['rungs'])})")
        panel = data.load_panel(conn, kind)
    train_end = panel.last_observed_index()
    f = Forecaster(make_point(name, spec["rungs"][name] or {}, num_threads=settings.num_threads,
                              horizon_h=horizon_h),
                   horizon_h=horizon_h, cal_days=spec["calibration"]["days"],
                   cal_every_h=spec["calibration"]["every_h"],
                   err_days=spec["calibration"]["recent_error_days"])
    with track_run(settings, "train", sensor_kind=kind,
                   details={"rung": name, "purpose": "production"}) as run:
        f.fit(panel, train_end)
    feats, params = _features_and_params(f)
    with db.connect(autocommit=True) as conn:
        row = registry.register(
            conn, settings, kind, f, data_sha256=panel.data_sha256(train_end),
            metrics=_latest_backtest(conn, kind, name), train_seconds=run.duration_s,
            train_energy_kwh=run.energy_kwh,
            energy={"train_kwh": run.energy_kwh, "method": run.measurement_method},
            features=feats, params=params)
        conn.execute("UPDATE compute_runs SET model_id = %s WHERE run_id = %s",
                     (row.model_id, run.run_id))
        if promote:
            row = registry.promote(conn, row.model_id)
    return {"kind": kind, "model_id": row.model_id, "name": name, "status": row.status,
            "sensors": len(panel.sensors), "train_start": f.train_start_ts,
            "train_end": f.train_end_ts, "train_seconds": run.duration_s,
            "train_energy_kwh": run.energy_kwh, "artefact_path": row.artefact_path}


def _write_forecasts(conn: psycopg.Connection, model_id: str, issued_at: datetime,
                     panel: Panel, origin: int, p10: np.ndarray, p50: np.ndarray,
                     p90: np.ndarray) -> int:
    step_h = panel.step / pd.Timedelta(hours=1)
    rows = []
    for k in range(p50.shape[0]):
        # UTC grid: continuous across the 23 h / 25 h DST days
        ts = (panel.times[origin] + (k + 1) * panel.step).to_pydatetime()
        for j, sid in enumerate(panel.sensor_ids):
            if not np.isfinite(p50[k, j]):
                continue
            rows.append((sid, model_id, issued_at, ts, (k + 1) * step_h,
                         float(p10[k, j]), float(p50[k, j]), float(p90[k, j])))
    with conn.cursor() as cur, conn.transaction():
        cur.executemany(
            """INSERT INTO forecasts (sensor_id, model_id, issued_at, ts, horizon_h, p10, p50, p90)
               VALUES (%s,%s,%s,%s,%s,%s,%s,%s)
               ON CONFLICT (sensor_id, model_id, issued_at, ts) DO UPDATE SET
                 horizon_h = EXCLUDED.horizon_h, p10 = EXCLUDED.p10, p50 = EXCLUDED.p50,
                 p90 = EXCLUDED.p90""", rows)
    return len(rows)


def forecast(settings: Settings, kind: str, issued_at: datetime | None = None,
             horizon_h: float = 48) -> dict[str, Any]:
    """Forecast the next ``horizon_h`` hours of every sensor of ``kind`` with the promoted
    model, issued at ``issued_at`` (default: the kind's last reading time), into
    ``forecasts``. Only readings at or before the issue time are read."""
    _warm(settings)
    db = open_database(settings)
    with db.connect(autocommit=True) as conn:
        row = registry.promoted(conn, kind)
        if row is None:
            raise ModelError(f"no promoted model for kind '{kind}': run `ecodemo train "
                             f"--kind {kind}` first")
        if issued_at is None:
            last = conn.execute("SELECT max(r.ts) FROM readings r JOIN sensors s "
                                "USING (sensor_id) WHERE s.kind = %s", (kind,)).fetchone()
            if last is None or last[0] is None:
                raise ModelError(f"no readings for kind '{kind}'")
            issued_at = last[0]
        assert issued_at is not None
        since = issued_at - timedelta(days=FORECAST_HISTORY_DAYS)
        panel = data.load_panel(conn, kind, since=since, until=issued_at,
                                weather_ahead_h=horizon_h)
    f, _meta = registry.load(settings, row)
    issued = pd.Timestamp(issued_at).tz_convert("UTC")
    grid_issue = issued.floor(panel.step) if panel.step <= pd.Timedelta(days=1) else issued
    gap = int((grid_issue - panel.times[-1]) / panel.step)
    if gap > 0:
        panel = panel.extend(gap)
    origin = int(panel.times.get_indexer([grid_issue])[0])
    if origin < 0:
        raise ModelError(f"issue time {issued.isoformat()} is not on the {panel.step} grid")
    n_steps = panel.steps_for_hours(horizon_h)
    with track_run(settings, "predict", sensor_kind=kind, model_id=row.model_id,
                   details={"purpose": "forecast", "leads": n_steps,
                            "sensors": len(panel.sensors)}) as run:
        p10, p50, p90 = f.predict(panel, np.array([origin]), n_steps)
    with db.connect(autocommit=True) as conn:
        n = _write_forecasts(conn, row.model_id, issued.to_pydatetime(), panel, origin,
                             p10[0], p50[0], p90[0])
    return {"kind": kind, "model_id": row.model_id, "issued_at": issued.isoformat(),
            "horizon_h": horizon_h, "sensors": len(panel.sensors), "rows": n,
            "first_ts": (panel.times[origin] + panel.step).isoformat(),
            "predict_seconds": run.duration_s, "predict_energy_kwh": run.energy_kwh}
