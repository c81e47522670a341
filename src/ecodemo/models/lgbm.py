"""One global LightGBM model per kind, direct multi-horizon by horizon bucket.

For each bucket upper bound ``L`` (hours, turned into grid steps) one booster learns
``y[t] ~ features(readings <= t - L, calendar/solar/weather at t, sensor)``; a forecast for lead
``k`` uses the booster of the smallest bucket with ``L >= k``. This is direct forecasting (no
recursion, so errors do not compound and 48 leads cost a handful of boosters, not 48), and it
cannot read past the issue time (see :mod:`ecodemo.models.features`).

Uncertainty: the booster is trained for the median (``objective="l1"``, p50) and the p10/p90
band comes from empirical residual quantiles on a held-out calibration window
(:mod:`ecodemo.models.calibration`). Why not three quantile objectives: it triples training
energy, and quantile boosters trained on the same data are known to under-cover out of sample
(they fit the training residuals); residuals on unseen data are calibrated by construction and
the same machinery gives the no-AI baselines bands too, so the ladder compares like with like.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from ecodemo.errors import ModelError
from ecodemo.models.features import FeatureContext, feature_names, robust_scale
from ecodemo.models.panel import Panel


@dataclass(frozen=True)
class LgbmSpec:
    """A LightGBM ladder rung: trees, horizon buckets (hours), feature set, booster params."""

    name: str
    num_boost_round: int = 200
    buckets_h: tuple[float, ...] = (1, 3, 6, 12, 24, 48)
    feature_set: str = "full"
    params: dict[str, Any] = field(default_factory=dict)
    max_rows: int | None = None   # rows sampled per booster (None: all): bounds training cost

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> LgbmSpec:
        return cls(name=name, num_boost_round=int(d.get("num_boost_round", 200)),
                   buckets_h=tuple(float(b) for b in d.get("buckets_h", cls.buckets_h)),
                   feature_set=str(d.get("feature_set", "full")),
                   params=dict(d.get("params", {})),
                   max_rows=int(d["max_rows"]) if d.get("max_rows") else None)


BASE_PARAMS: dict[str, Any] = {
    "objective": "l1",            # the median: p50, and the point forecast MAE rewards
    "learning_rate": 0.08,
    "num_leaves": 63,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "max_bin": 127,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,       # fixed layout choice: no timing probe, reproducible
}


WEATHER_DROPOUT = 0.2   # share of training rows whose weather features are left missing


class LgbmForecaster:
    """Point (p50) forecaster: one booster per horizon bucket, one model across sensors."""

    def __init__(self, spec: LgbmSpec, *, num_threads: int, max_horizon_h: float,
                 seed: int = 20240601) -> None:
        self.spec = spec
        self.name = spec.name
        self.num_threads = num_threads
        self.seed = seed
        self.max_horizon_h = max_horizon_h
        self.boosters: dict[int, lgb.Booster] = {}      # min lag in steps -> booster
        self.features: list[str] = []
        self.scale: dict[str, float] = {}
        self.sensor_ids: list[str] = []
        self.with_weather = False
        self.step_seconds: float | None = None

    # -- buckets ----------------------------------------------------------------------------
    def bucket_steps(self, panel: Panel) -> list[int]:
        """Minimum lags (grid steps) of the buckets needed to reach ``max_horizon_h``."""
        steps = sorted({panel.steps_for_hours(h) for h in self.spec.buckets_h})
        horizon = panel.steps_for_hours(self.max_horizon_h)
        needed = [s for s in steps if s < horizon] + [next((s for s in steps if s >= horizon),
                                                           horizon)]
        return sorted(set(needed))

    def _codes(self, panel: Panel) -> np.ndarray:
        index = {sid: i for i, sid in enumerate(self.sensor_ids)}
        # unseen sensors get a negative code: LightGBM treats it as missing
        return np.array([index.get(sid, -1) for sid in panel.sensor_ids], dtype=float)

    def _scale_for(self, panel: Panel, upto: int) -> np.ndarray:
        own = robust_scale(panel.values[: upto + 1])
        return np.array([self.scale.get(sid, own[j]) for j, sid in enumerate(panel.sensor_ids)])

    # -- fit / predict ----------------------------------------------------------------------
    def fit(self, panel: Panel, fit_end: int) -> None:
        if fit_end < 2 * panel.steps_per_day:
            raise ModelError(f"{panel.kind}: not enough history to train ({fit_end + 1} steps)")
        self.sensor_ids = panel.sensor_ids
        scale = robust_scale(panel.values[: fit_end + 1])
        self.scale = {sid: float(scale[j]) for j, sid in enumerate(self.sensor_ids)}
        self.with_weather = panel.weather is not None or panel.issued_weather is not None
        self.features = feature_names(self.spec.feature_set, panel.kind, self.with_weather)
        self.step_seconds = panel.step.total_seconds()
        ctx = FeatureContext.build(panel.truncate(fit_end), scale, self.with_weather)
        if self.with_weather and ctx.weather is None and ctx.issued is None:
            self.with_weather = False
            self.features = feature_names(self.spec.feature_set, panel.kind, False)
        start = panel.steps_per_day
        t, s = np.nonzero(np.isfinite(ctx.y[start: fit_end + 1]))
        t = t + start
        if len(t) < 100:
            raise ModelError(f"{panel.kind}: only {len(t)} readings to train on")
        label = ctx.y[t, s]
        codes = self._codes(panel)
        params = {**BASE_PARAMS, **self.spec.params, "num_threads": self.num_threads,
                  "seed": self.seed}
        self.boosters = {}
        rng = np.random.default_rng(self.seed)
        for lag in self.bucket_steps(panel):
            # A row budget per booster keeps several buckets at the cost of about one model on
            # large panels; each bucket draws its own sample (fixed seed: reproducible).
            rows = np.arange(len(t))
            if self.spec.max_rows and len(rows) > self.spec.max_rows:
                rows = np.sort(rng.choice(rows, self.spec.max_rows, replace=False))
            x = ctx.rows(lag, t[rows], s[rows], self.features, codes)
            self._weather_dropout(x, rng)
            data = lgb.Dataset(x, label=label[rows], feature_name=self.features,
                               categorical_feature=["sensor"], free_raw_data=True,
                               params={"max_bin": params["max_bin"], "verbose": -1})
            self.boosters[lag] = lgb.train(params, data,
                                           num_boost_round=self.spec.num_boost_round)

    def _weather_dropout(self, x: np.ndarray, rng: np.random.Generator) -> None:
        """Blank the weather of a share of training rows: a weather forecast can be missing
        when the model forecasts (not collected yet, not issued that far ahead), and a model
        that never saw a missing value sends it down an arbitrary branch (as if 0 degC)."""
        cols = [j for j, f in enumerate(self.features) if f.startswith("wx_")]
        if cols and WEATHER_DROPOUT > 0:
            blank = np.flatnonzero(rng.random(len(x)) < WEATHER_DROPOUT)
            x[np.ix_(blank, np.asarray(cols, dtype=np.intp))] = np.nan

    def predict(self, panel: Panel, origins: np.ndarray, n_steps: int) -> np.ndarray:
        if not self.boosters:
            raise ModelError(f"model {self.name} is not trained")
        lags = sorted(self.boosters)
        if n_steps > lags[-1]:
            raise ModelError(f"{self.name} was trained for leads up to {lags[-1]} steps, "
                             f"asked for {n_steps}")
        origins = np.asarray(origins, dtype=int)
        need = int(origins.max()) + n_steps - (len(panel.times) - 1)
        ext = panel.extend(max(0, need))
        scale = self._scale_for(panel, int(origins.min()))
        ctx = FeatureContext.build(ext, scale, self.with_weather)
        codes = self._codes(panel)
        n_s = len(panel.sensors)
        out = np.full((len(origins), n_steps, n_s), np.nan)
        lo = 0
        for lag in lags:
            leads = np.arange(lo + 1, min(lag, n_steps) + 1)
            lo = lag
            if len(leads) == 0:
                continue
            tt = origins[:, None, None] + leads[None, :, None]          # [O, k, 1]
            t = np.broadcast_to(tt, (len(origins), len(leads), n_s)).ravel()
            s = np.broadcast_to(np.arange(n_s)[None, None, :],
                                (len(origins), len(leads), n_s)).ravel()
            x = ctx.rows(lag, t, s, self.features, codes)
            pred = np.asarray(self.boosters[lag].predict(x, num_threads=self.num_threads))
            out[:, leads - 1, :] = pred.reshape(len(origins), len(leads), n_s)
            if lo >= n_steps:
                break
        return out * scale[None, None, :]

    # -- persistence ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"spec": asdict(self.spec), "features": self.features, "scale": self.scale,
                "sensor_ids": self.sensor_ids, "with_weather": self.with_weather,
                "max_horizon_h": self.max_horizon_h, "seed": self.seed,
                "step_seconds": self.step_seconds,
                "boosters": {str(k): f"booster_lag{k}.txt" for k in sorted(self.boosters)}}

    def save(self, folder: Path) -> list[str]:
        """Write one LightGBM text model per bucket; returns the file names."""
        folder.mkdir(parents=True, exist_ok=True)
        names = []
        for lag, booster in sorted(self.boosters.items()):
            name = f"booster_lag{lag}.txt"
            booster.save_model(str(folder / name))
            names.append(name)
        return names

    @classmethod
    def load(cls, folder: Path, state: dict[str, Any], *, num_threads: int) -> LgbmForecaster:
        spec_d = dict(state["spec"])
        spec = LgbmSpec(name=spec_d["name"], num_boost_round=spec_d["num_boost_round"],
                        buckets_h=tuple(spec_d["buckets_h"]), feature_set=spec_d["feature_set"],
                        params=spec_d["params"], max_rows=spec_d.get("max_rows"))
        m = cls(spec, num_threads=num_threads, max_horizon_h=state["max_horizon_h"],
                seed=state["seed"])
        m.features, m.scale = list(state["features"]), dict(state["scale"])
        m.sensor_ids, m.with_weather = list(state["sensor_ids"]), bool(state["with_weather"])
        m.step_seconds = state.get("step_seconds")
        for lag, name in state["boosters"].items():
            path = folder / name
            if not path.is_file():
                raise ModelError(f"model file missing: {path}")
            m.boosters[int(lag)] = lgb.Booster(model_file=str(path))
        return m


def describe(spec: LgbmSpec) -> str:
    return json.dumps(asdict(spec), sort_keys=True)
