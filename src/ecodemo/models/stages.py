"""Stage functions for the CLI and Airflow: ladder (backtest + choice), train, forecast.

Each takes an explicit Settings and returns a JSON-able dict. Every training and prediction run
is wrapped by the energy tracker (stages "train", "predict", "backtest"), so each leaves a
``compute_runs`` row; the ladder reads the measured energy of those runs.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from ecodemo.config import Settings
from ecodemo.errors import ModelError
from ecodemo.metering import attach_model, track_run, warm_up
from ecodemo.models import backtest, data, registry
from ecodemo.models.forecaster import Forecaster, gather, gather_mask, make_point, night_matrix
from ecodemo.models.ladder import choose
from ecodemo.models.lgbm import LgbmForecaster
from ecodemo.models.metrics import ALL, per_origin_errors
from ecodemo.models.panel import Panel
from ecodemo.models.specs import load_ladder_spec
from ecodemo.store import evaluations
from ecodemo.store.connection import open_database
from ecodemo.store.forecasts import ForecastRow, upsert_forecasts
from ecodemo.store.kinds import kinds_with_readings

log = logging.getLogger(__name__)

FORECAST_HISTORY_DAYS = 16   # readings a forecast needs: 48 h lags + 8 days of daily slots
WEATHER_NOTE = ("weather covariates: observed weather at the target time stands in for a "
                "weather forecast in this backtest (an optimistic assumption)")
#: the backtest JSON's figures of each rung (test origins; ``selection``: where it was chosen)
MODEL_FIELDS = ("name", "mae", "rmse", "nmae", "skill_vs_seasonal_naive", "coverage_p10_p90",
                "coverage_night", "coverage_by_lead_h", "day_ahead", "selection",
                "train_seconds", "train_energy_kwh", "predict_energy_kwh")

_warmed: set[str] = set()


def _warm(settings: Settings) -> None:
    """Pay the energy tracker's start-up once per process, before the first measured run."""
    key = str(settings.state_dir)
    if key not in _warmed:
        warm_up(settings)
        _warmed.add(key)


def kinds_with_data(settings: Settings) -> list[str]:
    """Kinds with readings (:func:`ecodemo.store.kinds.kinds_with_readings`), for the CLI."""
    with open_database(settings).connect() as conn:
        return kinds_with_readings(conn)


def _features_and_params(f: Forecaster) -> tuple[list[str], dict[str, Any]]:
    if isinstance(f.point, LgbmForecaster):
        spec = f.point.spec
        return list(f.point.features), {"num_boost_round": spec.num_boost_round,
                                        "buckets_h": list(spec.buckets_h),
                                        "feature_set": spec.feature_set,
                                        "max_rows": spec.max_rows, **spec.params}
    return [], {"baseline": f.name}


def _weather(points: list[Any], panel: Panel, origins: np.ndarray, n_steps: int,
             observed_stands_in: bool) -> dict[str, Any]:
    """``weather`` of the backtest JSON and of a forecast: where the weather the models read
    came from (``none`` when no model reads weather)."""
    if not any(isinstance(p, LgbmForecaster) and p.with_weather for p in points):
        return {"provenance": "none", "variables": []}
    return backtest.weather_provenance(panel, origins, n_steps,
                                       observed_stands_in=observed_stands_in)


def run_ladder(settings: Settings, kind: str, horizon_h: float = 24,
               folds: int | None = None, tolerance: float | None = None,
               rungs: list[str] | None = None) -> dict[str, Any]:
    """Backtest every rung on the store's data for ``kind``, choose, record, register.

    Protocol (:mod:`ecodemo.models.backtest`): every rung is trained once on data up to the
    first test origin; the choice is made on its calibration forecasts (selection origins,
    before the test); every rung's figures are on the test origins only (one per day at local
    noon, ``folds`` of them): pooled over leads 1..horizon, per lead group, and day-ahead.
    Returns the backtest JSON of the issue (plus ``notes``).
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
    fit_h = backtest.fit_hours(horizon_h)
    n_steps, n_fit = panel.steps_for_hours(horizon_h), panel.steps_for_hours(fit_h)
    origins = backtest.noon_origins(panel, n_fit, folds)
    train_end = int(origins[0])
    actual = gather(panel.values, origins, n_fit)
    results: list[dict[str, Any]] = []
    preds: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    fitted: dict[str, Forecaster] = {}
    train_run_ids: dict[str, str] = {}
    for name, rung in spec["rungs"].items():
        point = make_point(name, rung or {}, num_threads=settings.num_threads, horizon_h=fit_h)
        f = Forecaster(point, horizon_h=fit_h, cal_days=spec["calibration"]["days"],
                       cal_every_h=spec["calibration"]["every_h"],
                       err_days=spec["calibration"]["recent_error_days"])
        with track_run(settings, "train", sensor_kind=kind,
                       details={"rung": name, "purpose": "ladder backtest"}) as tr:
            f.fit(panel, train_end)
        with track_run(settings, "predict", sensor_kind=kind,
                       details={"rung": name, "purpose": "ladder backtest",
                                "origins": len(origins), "leads": n_fit}) as pr:
            preds[name] = backtest.predict_refreshing(
                f, panel, origins, n_fit, spec["backtest"]["refresh_bands_days"])
        fitted[name] = f
        train_run_ids[name] = tr.run_id
        results.append({"name": name, "train_seconds": tr.duration_s,
                        "train_energy_kwh": tr.energy_kwh, "predict_seconds": pr.duration_s,
                        "predict_energy_kwh": pr.energy_kwh})
    start = panel.times[int(origins[0]) + 1].to_pydatetime()
    end = panel.times[min(int(origins[-1]) + n_steps, len(panel.times) - 1)].to_pydatetime()
    ref_sel = fitted["seasonal_naive"].selection
    assert ref_sel is not None
    proto = backtest.protocol(panel, ref_sel, origins, n_steps, n_fit)
    weather = _weather([f.point for f in fitted.values()], panel, origins, n_fit, True)
    notes = [f"nMAE = MAE / mean(|actual|) per sensor; '{ALL}' averages sensors equally",
             f"chosen on the selection origins ({proto['selection']['first_origin']} .. "
             f"{proto['selection']['last_origin']}, {proto['selection']['folds']}), before "
             f"the test; tolerance {tol:.0%} relative: eligible if selection nMAE <= best x "
             f"(1 + {tol:g})",
             f"trained on data up to {panel.times[train_end].isoformat()}; "
             f"{len(origins)} test origins at local noon, leads 1..{n_steps} steps of "
             f"{panel.step} pooled; day-ahead: the next local day (leads 12-36 h)"]
    if panel.kind == "solar":
        notes.append("solar nights are scored apart: a night target's band is the sensor's "
                     "night level (zero width at a constant 0); coverage_p10_p90 counts "
                     "daylight points, coverage_night the night ones")
    if weather["provenance"] == "observed_standing_in":
        notes.append(WEATHER_NOTE)
    details = {"folds": len(origins), "train_end": panel.times[train_end].isoformat(),
               "protocol": proto, "weather": weather, "notes": notes}
    with track_run(settings, "backtest", sensor_kind=kind,
                   details={"rungs": list(spec["rungs"]), "folds": len(origins)}):
        reference = preds["seasonal_naive"][1]
        night = gather_mask(night_matrix(panel), origins, n_fit)
        ahead = backtest.day_ahead_mask(panel, origins, n_fit)
        per_rung: dict[str, dict[str, dict[str, Any]]] = {}
        extras: dict[str, dict[str, Any]] = {}
        per_origin: dict[str, dict[str, dict[str, Any]]] = {}
        origin_times = [panel.times[int(o)].isoformat() for o in origins]
        for r in results:
            figures, extra = backtest.figures_on_test(panel, actual, preds[r["name"]],
                                                      reference, night, n_steps, ahead)
            sel = fitted[r["name"]].selection
            assert sel is not None
            chosen_on = backtest.selection_figures(sel, ref_sel, panel.sensor_ids, n_steps)
            per_rung[r["name"]], extras[r["name"]] = figures, {**extra, "selection": chosen_on}
            # per test origin (day), what the balance resamples to bound its error reduction
            errs = per_origin_errors(actual[:, :n_steps], preds[r["name"]][1][:, :n_steps],
                                     reference[:, :n_steps], panel.sensor_ids)
            per_origin[r["name"]] = {sid: {"per_origin": {"origins": origin_times, **e}}
                                     for sid, e in errs.items()}
            r.update({k: figures[ALL][k] for k in ("mae", "rmse", "nmae",
                                                   "skill_vs_seasonal_naive",
                                                   "coverage_p10_p90", "coverage_night")})
            r.update(extras[r["name"]])
        chosen, reason = choose([{**r, "nmae": r["selection"]["nmae"]} for r in results], tol,
                                "selection nMAE")
        with db.connect(autocommit=True) as conn:
            f = fitted[chosen]
            feats, params = _features_and_params(f)
            c = next(r for r in results if r["name"] == chosen)
            row = registry.register(
                conn, settings, kind, f, data_sha256=panel.data_sha256(train_end),
                metrics={**per_rung[chosen], "backtest": {**details, **extras[chosen]}},
                train_seconds=c["train_seconds"], train_energy_kwh=c["train_energy_kwh"],
                energy={"train_kwh": c["train_energy_kwh"],
                        "predict_kwh": c["predict_energy_kwh"]},
                features=feats, params=params)
            # The chosen rung's training run is this candidate's training: link it, so the
            # balance finds what the model cost to train.
            attach_model(conn, train_run_ids[chosen], row.model_id)
            evaluations.write_backtest(
                conn, kind, horizon_h, start, end,
                [(r["name"], row.model_id if r["name"] == chosen else None, per_rung[r["name"]],
                  {**details, **extras[r["name"]]}) for r in results],
                sensor_details=per_origin)
            registry.record_choice(conn, kind, chosen, row.model_id, tol, reason, results)
    models = [{k: r.get(k) for k in MODEL_FIELDS} for r in results]
    return {"kind": kind, "horizon_hours": horizon_h, "sensors": len(panel.sensors),
            "folds": len(origins), "protocol": proto, "weather": weather, "models": models,
            "chosen": chosen, "reason": reason, "notes": notes}


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
    if panel.issued_weather is None and panel.weather is not None:
        # no weather forecasts in the store: a production model must not learn from observed
        # weather it will not have when it forecasts the future
        panel = replace(panel, weather=None, weather_provenance="none")
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
        attach_model(conn, run.run_id, row.model_id)
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
    rows: list[ForecastRow] = []
    for k in range(p50.shape[0]):
        # UTC grid: continuous across the 23 h / 25 h DST days
        ts = (panel.times[origin] + (k + 1) * panel.step).to_pydatetime()
        for j, sid in enumerate(panel.sensor_ids):
            if not np.isfinite(p50[k, j]):
                continue
            rows.append((sid, model_id, issued_at, ts, (k + 1) * step_h,
                         float(p10[k, j]), float(p50[k, j]), float(p90[k, j])))
    upsert_forecasts(conn, rows)
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
        # observed weather only up to the issue time: it never stands in for a forecast of
        # the future; forecasts as issued at or before the issue time do
        panel = data.load_panel(conn, kind, since=since, until=issued_at, observed_ahead_h=0)
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
    # where this forecast's weather comes from, kept with its run (compute_runs.details)
    weather = _weather([f.point], panel, np.array([origin]), n_steps, False)
    with track_run(settings, "predict", sensor_kind=kind, model_id=row.model_id,
                   details={"purpose": "forecast", "leads": n_steps,
                            "sensors": len(panel.sensors), "issued_at": issued.isoformat(),
                            "weather": weather}) as run:
        p10, p50, p90 = f.predict(panel, np.array([origin]), n_steps)
    with db.connect(autocommit=True) as conn:
        n = _write_forecasts(conn, row.model_id, issued.to_pydatetime(), panel, origin,
                             p10[0], p50[0], p90[0])
    return {"kind": kind, "model_id": row.model_id, "issued_at": issued.isoformat(),
            "horizon_h": horizon_h, "sensors": len(panel.sensors), "rows": n,
            "first_ts": (panel.times[origin] + panel.step).isoformat(),
            "predict_seconds": run.duration_s, "predict_energy_kwh": run.energy_kwh,
            "weather": weather}
