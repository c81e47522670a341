"""Forecasting benchmark: ecodemo against mlforecast (Nixtla), speed targets, accuracy per kind.

    python benchmarks/forecast.py [--data DIR] [--skip-accuracy] [--shift-days N]

1. Paris bike counters (shared data set): ecodemo's lgbm_large rung against mlforecast
   (recursive, lags + rolling means + calendar, per-series standard scaling) with the same
   LightGBM parameters and the same folds (trained once before the backtest window, 28 daily
   origins, 24 h ahead). MAE over the same points, wall time of fit + predict, side by side.
2. Training a global model for 48 h (all buckets) on 52 counters x 1 year; forecasting 48 h for
   1,000 sensors (the 52 counters tiled with random scale factors, 16 days of history each).
3. Accuracy on every kind of the shared data with the ladder's protocol (choice on the
   selection origins, figures on 28 noon test origins): skill against seasonal naive pooled
   over 1..24 h and day-ahead, p10-p90 coverage (solar nights apart) pooled and per lead group,
   for each rung. Reported, not tuned. ``--shift-days N`` moves the window N days earlier for
   every kind (each kind's data is cut N days before its last reading), so a conclusion can be
   checked on a second period.

Needs the ``bench`` extra (mlforecast). Figures depend on the machine and on its load: the
script prints the load average next to them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ecodemo.models import backtest
from ecodemo.models.forecaster import Forecaster, gather, gather_mask, make_point, night_matrix
from ecodemo.models.ladder import choose
from ecodemo.models.lgbm import BASE_PARAMS, LgbmForecaster, LgbmSpec
from ecodemo.models.metrics import ALL
from ecodemo.models.panel import Panel, SensorMeta, panel_from_long
from ecodemo.models.specs import load_ladder_spec

# The project's development data set (not bundled: large); ECODEMO_DEV_DATA_DIR overrides.
DEFAULT_DATA = Path(os.environ.get("ECODEMO_DEV_DATA_DIR")
                    or Path(__file__).resolve().parents[1].parent / "shared" / "data")
FOLDS, HORIZON_H = 28, 24


def load_kind(data: Path, kind: str, resolution: str | None = None) -> Panel | None:
    """A kind's sites at ``resolution`` (ISO 8601, as sites.csv), else at the kind's most
    common resolution (one grid per kind)."""
    sites = pd.read_csv(data / "sites.csv")
    sites = sites[sites["kind"] == kind]
    if resolution is not None:
        sites = sites[sites["resolution"] == resolution]
    if sites.empty:
        return None
    frames = []
    for f in sorted(data.glob("*.csv.gz")):
        df = pd.read_csv(f)
        frames.append(df[df["site_id"].isin(set(sites["site_id"]))])
    long = pd.concat(frames).rename(columns={"timestamp": "ts", "site_id": "sensor_id"})
    if long.empty:
        return None
    # the one US site is the NREL plant in Golden, Colorado
    zones = {"FR": "Europe/Paris", "US": "America/Denver"}
    metas = [SensorMeta(r.site_id, r.unit, r.latitude, r.longitude,
                        zones.get(str(r.country), "Europe/Paris")) for r in sites.itertuples()]
    # One grid per kind: keep the sensors at the kind's most common resolution.
    res = sites["resolution"].mode().iloc[0]
    keep = set(sites.loc[sites["resolution"] == res, "site_id"])
    long = long[long["sensor_id"].isin(keep)]
    return panel_from_long(kind, long, [m for m in metas if m.sensor_id in keep],
                           step=pd.Timedelta(res))


def origins_for(panel: Panel) -> tuple[np.ndarray, int]:
    n = panel.steps_for_hours(HORIZON_H)
    every = panel.steps_for_hours(24)
    last = panel.last_observed_index()
    return last - n - every * np.arange(FOLDS - 1, -1, -1), n


def large_spec() -> LgbmSpec:
    rung = load_ladder_spec()["rungs"]["lgbm_large"]
    return LgbmSpec.from_dict("lgbm_large", rung)


def compare_with_mlforecast(panel: Panel, threads: int) -> None:
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean
    from mlforecast.target_transforms import LocalStandardScaler
    from pandas.tseries.frequencies import to_offset

    spec = large_spec()
    params = {**BASE_PARAMS, **spec.params}
    origins, n = origins_for(panel)
    actual = gather(panel.values, origins, n)

    t0 = time.perf_counter()
    eco = LgbmForecaster(spec, num_threads=threads, max_horizon_h=HORIZON_H)
    eco.fit(panel, int(origins[0]))
    eco_pred = eco.predict(panel, origins, n)
    eco_s = time.perf_counter() - t0

    # mlforecast needs contiguous series: gaps forward-filled in its input only.
    wide = pd.DataFrame(panel.values, index=panel.times.tz_convert(None),
                        columns=panel.sensor_ids).ffill().bfill()
    df = wide.stack().rename("y").reset_index()
    df.columns = ["ds", "unique_id", "y"]
    df = df[df["ds"] <= panel.times[int(origins[-1]) + n].tz_convert(None)]
    model = lgb.LGBMRegressor(
        n_estimators=spec.num_boost_round, objective=params["objective"],
        learning_rate=params["learning_rate"], num_leaves=params["num_leaves"],
        min_child_samples=params["min_data_in_leaf"], colsample_bytree=params["feature_fraction"],
        subsample=params["bagging_fraction"], subsample_freq=params["bagging_freq"],
        max_bin=params["max_bin"], n_jobs=threads, random_state=20240601, verbose=-1)
    day = panel.steps_per_day
    mlf = MLForecast(models={"lgbm": model}, freq=to_offset(panel.step),
                     lags=[1, 2, 3, day, 2 * day, 7 * day],
                     lag_transforms={1: [RollingMean(window_size=day)],
                                     day: [RollingMean(window_size=7 * day)]},
                     date_features=["hour", "dayofweek", "dayofyear"],
                     target_transforms=[LocalStandardScaler()], num_threads=threads)
    t0 = time.perf_counter()
    cv = mlf.cross_validation(df, n_windows=FOLDS, h=n, step_size=panel.steps_for_hours(24),
                              refit=False, static_features=[])
    mlf_s = time.perf_counter() - t0
    cv["ds"] = pd.to_datetime(cv["ds"]).dt.tz_localize("UTC")
    idx = {s: j for j, s in enumerate(panel.sensor_ids)}
    mlf_pred = np.full_like(actual, np.nan)
    t_pos = panel.times.get_indexer(pd.DatetimeIndex(cv["ds"]))
    cut = panel.times.get_indexer(pd.DatetimeIndex(pd.to_datetime(cv["cutoff"])
                                                   .dt.tz_localize("UTC")))
    o_pos = np.searchsorted(origins, cut)
    mlf_pred[o_pos, t_pos - cut - 1, cv["unique_id"].map(idx).to_numpy()] = cv["lgbm"].to_numpy()
    ok = np.isfinite(actual) & np.isfinite(eco_pred) & np.isfinite(mlf_pred)
    eco_mae = float(np.abs(eco_pred - actual)[ok].mean())
    mlf_mae = float(np.abs(mlf_pred - actual)[ok].mean())
    print(f"\n1. Paris bike counters, {len(panel.sensors)} counters, {FOLDS} daily origins, "
          f"24 h ahead, same LightGBM parameters ({spec.num_boost_round} trees, "
          f"{params['num_leaves']} leaves, lr {params['learning_rate']}, {params['objective']})")
    print(f"   {'':12}{'ecodemo':>12}{'mlforecast':>12}")
    print(f"   {'MAE (bikes/h)':12}{eco_mae:>12.2f}{mlf_mae:>12.2f}")
    print(f"   {'wall time s':12}{eco_s:>12.1f}{mlf_s:>12.1f}")
    print(f"   ecodemo: direct, {len(eco.boosters)} boosters (horizon buckets); mlforecast: "
          "recursive, one model")


def speed_targets(panel: Panel, threads: int) -> None:
    spec = large_spec()
    last = panel.last_observed_index()
    one_year = panel.steps_for_hours(24 * 365)
    year = panel.truncate(last)
    start = max(0, last - one_year)
    year = Panel(panel.kind, panel.times[start:last + 1], panel.sensors,
                 panel.values[start:last + 1], panel.step)
    f = Forecaster(LgbmForecaster(spec, num_threads=threads, max_horizon_h=48), horizon_h=48)
    t0 = time.perf_counter()
    f.fit(year, len(year.times) - 1)
    train_s = time.perf_counter() - t0
    hist = panel.steps_for_hours(24 * 16)
    rng = np.random.default_rng(0)
    reps = -(-1000 // len(panel.sensors))
    tail = panel.values[-hist:]
    values = np.hstack([tail * rng.uniform(0.5, 2.0, len(panel.sensors)) for _ in range(reps)])
    values = values[:, :1000]
    metas = tuple(SensorMeta(f"sim-{i:04d}") for i in range(1000))
    big = Panel(panel.kind, panel.times[-hist:], metas, values, panel.step)
    t0 = time.perf_counter()
    p10, p50, p90 = f.predict(big, np.array([hist - 1]), panel.steps_for_hours(48))
    pred_s = time.perf_counter() - t0
    print(f"\n2. speed ({threads} threads; load average {os.getloadavg()[0]:.1f})")
    print(f"   {'':50}{'ecodemo':>10}{'target':>10}")
    print(f"   {f'train 48 h model, {len(panel.sensors)} counters x 1 year hourly (s)':50}"
          f"{train_s:>10.1f}{'< 15':>10}")
    print(f"   {'forecast 48 h for 1,000 sensors (s)':50}{pred_s:>10.2f}{'< 5':>10}")
    assert np.isfinite(p50).mean() > 0.99


def cut_before(panel: Panel, days: float) -> Panel:
    """The panel without its last ``days`` days of grid rows (0: unchanged)."""
    if days <= 0:
        return panel
    end = panel.last_observed_index() - panel.steps_for_hours(24 * days)
    if end < 0:
        raise SystemExit(f"{panel.kind}: --shift-days {days:g} leaves no data")
    return panel.truncate(end)


KINDS = (("bike", None), ("traffic", None), ("solar", "PT30M"), ("solar", "PT15M"),
         ("wind", None))


def accuracy_per_kind(data: Path, threads: int, shift_days: float = 0.0,
                      err_days: float | None = None, refresh_days: float | None = None) -> None:
    spec = load_ladder_spec()
    if err_days is not None:
        spec["calibration"]["recent_error_days"] = err_days
    if refresh_days is not None:
        spec["backtest"]["refresh_bands_days"] = refresh_days
    fit_h = backtest.fit_hours(HORIZON_H)
    print(f"\n3. accuracy on the shared data, the ladder's protocol: each rung trained once "
          f"before {FOLDS} test origins at local noon, chosen (*) on its calibration forecasts "
          "before them; skill = 1 - MAE/MAE seasonal naive, pooled over leads 1..24 h and "
          "day-ahead (next local day, leads 12-36 h); cover: p10-p90 coverage, 0.8 ideal, "
          "solar nights scored apart (night: their coverage); pinball: mean p10/p50/p90 "
          "pinball loss / mean |actual|"
          + (f"; window shifted {shift_days:g} days earlier" if shift_days else "")
          + f"; bands refreshed every {spec['backtest']['refresh_bands_days']:g} days")
    print(f"   {'kind':12}{'sensors':>8}  {'rung':16}{'sel nMAE':>9}{'nMAE':>7}{'skill':>7}"
          f"{'cover':>7}{'night':>7}{'DA skill':>9}{'DA cov':>7}{'pinball':>8}{'fit s':>7}"
          "  cover by lead group (h)")
    for kind, res in KINDS:
        panel = load_kind(data, kind, res)
        if panel is None:
            continue
        label = kind if res is None else f"{kind} {pd.Timedelta(res).seconds // 60}m"
        panel = cut_before(panel, shift_days)
        n, n_fit = panel.steps_for_hours(HORIZON_H), panel.steps_for_hours(fit_h)
        origins = backtest.noon_origins(panel, n_fit, FOLDS)
        actual = gather(panel.values, origins, n_fit)
        night = gather_mask(night_matrix(panel), origins, n_fit)
        ahead = backtest.day_ahead_mask(panel, origins, n_fit)
        rows, fitted, preds = [], {}, {}
        for name in ("seasonal_naive", "persistence", "climatology", "lgbm_small",
                     "lgbm_large"):
            f = Forecaster(make_point(name, spec["rungs"][name] or {}, num_threads=threads,
                                      horizon_h=fit_h), horizon_h=fit_h,
                           cal_days=spec["calibration"]["days"],
                           cal_every_h=spec["calibration"]["every_h"],
                           err_days=spec["calibration"]["recent_error_days"])
            t0 = time.perf_counter()
            f.fit(panel, int(origins[0]))
            fit_s = time.perf_counter() - t0
            preds[name] = backtest.predict_refreshing(f, panel, origins, n_fit,
                                                      spec["backtest"]["refresh_bands_days"])
            fitted[name] = f
            figures, extra = backtest.figures_on_test(panel, actual, preds[name],
                                                      preds["seasonal_naive"][1], night, n,
                                                      ahead)
            sel = backtest.selection_figures(f.selection, fitted["seasonal_naive"].selection,
                                             panel.sensor_ids, n)
            rows.append((name, sel, figures[ALL], extra, fit_s))
        chosen, _ = choose([{"name": r[0], "nmae": r[1]["nmae"], "train_seconds": r[4],
                             "predict_seconds": 0.0} for r in rows], spec["tolerance"])
        for name, sel, m, extra, fit_s in rows:
            da = extra["day_ahead"]
            leads = " ".join(_f(v, 2) for v in extra["coverage_by_lead_h"].values())
            mark = name + (" *" if name == chosen else "")
            print(f"   {label:12}{len(panel.sensors):>8}  {mark:16}"
                  f"{_f(sel['nmae']):>9}{_f(m['nmae']):>7}{_f(m['skill_vs_seasonal_naive']):>7}"
                  f"{_f(m['coverage_p10_p90']):>7}{_f(m['coverage_night']):>7}"
                  f"{_f(da['skill_vs_seasonal_naive']):>9}{_f(da['coverage_p10_p90']):>7}"
                  f"{_f(m['pinball'], 4):>8}{fit_s:>7.1f}  {leads}", flush=True)


def _f(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    ap.add_argument("--threads", type=int, default=2, help="LightGBM threads")
    ap.add_argument("--skip-accuracy", action="store_true", help="skip part 3")
    ap.add_argument("--skip-mlforecast", action="store_true", help="skip part 1")
    ap.add_argument("--skip-speed", action="store_true", help="skip part 2")
    ap.add_argument("--shift-days", type=float, default=0.0,
                    help="part 3: evaluate the 4 weeks ending this many days before each "
                         "kind's last reading (0: the last 4 weeks)")
    ap.add_argument("--err-days", type=float, default=None,
                    help="part 3: override the ladder's calibration.recent_error_days "
                         "(0: bands ignore the recent errors, as before)")
    ap.add_argument("--refresh-days", type=float, default=None,
                    help="part 3: override the ladder's backtest.refresh_bands_days (0: the "
                         "bands stay as fitted before the test)")
    args = ap.parse_args()
    if not (args.data / "transport_paris_bike_counters_hourly.csv.gz").is_file():
        print(f"shared data not found in {args.data}; nothing to benchmark")
        return 0
    print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    bikes = load_kind(args.data, "bike")
    assert bikes is not None
    if not args.skip_mlforecast:
        compare_with_mlforecast(bikes, args.threads)
    if not args.skip_speed:
        speed_targets(bikes, args.threads)
    if not args.skip_accuracy:
        accuracy_per_kind(args.data, args.threads, args.shift_days, args.err_days,
                          args.refresh_days)
    return 0


if __name__ == "__main__":
    sys.exit(main())
