"""A complete forecaster: a point (p50) model plus calibrated p10/p90 bands.

Fitting uses only grid rows ``<= train_end``: the point model learns from rows before a
held-out calibration window (the last ``cal_days`` days, or a quarter of a short history), then
forecasts issued every ``cal_every_h`` hours inside that window give the residuals that set the
bands (:mod:`ecodemo.models.calibration`), widened or narrowed by the point model's own errors
over the ``err_days`` days before each issue time. Baselines are calibrated the same way, so every
rung of the ladder publishes bands. Solar night targets take the sensor's night level
(:mod:`ecodemo.models.calibration`).

The calibration forecasts are also what the ladder chooses on (``selection``): they are issued
after the point model's training data and before any test origin, so the choice never sees the
test window, and costs no extra prediction.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecodemo.errors import ModelError
from ecodemo.models.baselines import BASELINES, Climatology, PointForecaster
from ecodemo.models.calibration import LEAD_GROUPS_H, ResidualBands
from ecodemo.models.features import robust_scale
from ecodemo.models.lgbm import LgbmForecaster, LgbmSpec
from ecodemo.models.panel import Panel
from ecodemo.solar import night_mask


def gather(values: np.ndarray, origins: np.ndarray, n_steps: int,
           upto: int | None = None) -> np.ndarray:
    """Actual values [origin, lead, sensor] for leads 1..n; NaN beyond the grid or ``upto``."""
    t = origins[:, None] + np.arange(1, n_steps + 1)[None, :]
    limit = len(values) - 1 if upto is None else min(upto, len(values) - 1)
    ok = t <= limit
    out = np.full((*t.shape, values.shape[1]), np.nan)
    out[ok] = values[t[ok]]
    return out


def night_matrix(panel: Panel, extra_steps: int = 0) -> np.ndarray | None:
    """[time, sensor] solar night over the panel's grid plus ``extra_steps`` future steps
    (None for other kinds, coarse grids, or when no sensor has coordinates)."""
    if panel.kind != "solar":
        return None
    sites = [(round(m.latitude, 2), round(m.longitude, 2))
             if m.latitude is not None and m.longitude is not None else None
             for m in panel.sensors]
    known = [s for s in sites if s is not None]
    if not known:
        return None
    times = panel.extend(extra_steps).times if extra_steps > 0 else panel.times
    dark = night_mask(times, list(dict.fromkeys(known)))
    if dark is None:
        return None
    col = {s: j for j, s in enumerate(dict.fromkeys(known))}
    out = np.zeros((len(times), len(sites)), dtype=bool)
    for j, site in enumerate(sites):
        if site is not None:
            out[:, j] = dark[:, col[site]]
    return out


def gather_mask(mask: np.ndarray | None, origins: np.ndarray,
                n_steps: int) -> np.ndarray | None:
    """A [time, sensor] boolean mask at the targets [origin, lead, sensor] (False beyond it)."""
    if mask is None:
        return None
    return gather(mask.astype(float), origins, n_steps) == 1.0


@dataclass
class Selection:
    """The calibration forecasts: issued in (fit_end, train_end], before any test origin."""

    origins: np.ndarray            # grid indices
    p50: np.ndarray                # [origin, lead, sensor]
    actual: np.ndarray
    night: np.ndarray | None


def recent_error(point: PointForecaster, panel: Panel, origins: np.ndarray, n_steps: int,
                 k: int, scale: np.ndarray) -> np.ndarray:
    """Mean |actual - p50| / scale [origin, sensor] of the forecasts issued ``n_steps``,
    ``2 n_steps`` .. ``k n_steps`` before each origin, over their ``n_steps`` leads.

    Every target of those forecasts is at or before the origin, so this is known at issue time.
    NaN where nothing can be scored (start of the data, gaps). One extra point prediction per
    distinct past origin: about ``k`` times the cost of the forecast itself.
    """
    past = origins[:, None] - n_steps * np.arange(1, k + 1)[None, :]        # [origin, k]
    out = np.full((len(origins), len(panel.sensors)), np.nan)
    usable = past >= panel.steps_per_day         # features need some history
    if not usable.any():
        return out
    uniq, inverse = np.unique(past[usable], return_inverse=True)
    pred = point.predict(panel, uniq, n_steps)                          # [u, lead, sensor]
    actual = gather(panel.values, uniq, n_steps)
    err = np.full((*past.shape, len(panel.sensors)), np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN slices: NaN is the answer
        per_origin = np.nanmean(np.abs(actual - pred), axis=1) / scale[None, :]   # [u, sensor]
        err[usable] = per_origin[inverse]
        out = np.nanmean(err, axis=1)
    return out


class Forecaster:
    """Point model + residual bands, fitted on rows ``<= train_end``."""

    def __init__(self, point: PointForecaster, *, horizon_h: float, cal_days: float = 21.0,
                 cal_every_h: float = 6.0, err_days: float = 3.0) -> None:
        self.point = point
        self.name = point.name
        self.horizon_h = horizon_h
        self.cal_days = cal_days
        self.cal_every_h = cal_every_h
        self.err_days = err_days      # 0: bands ignore the recent errors
        self.bands = ResidualBands()
        self.scale: dict[str, float] = {}
        self.fit_end_ts: str | None = None
        self.train_end_ts: str | None = None
        self.train_start_ts: str | None = None
        self.selection: Selection | None = None    # set by fit, not saved

    def fit(self, panel: Panel, train_end: int) -> None:
        n = panel.steps_for_hours(self.horizon_h)
        observed = np.flatnonzero(np.isfinite(panel.values[: train_end + 1]).any(axis=1))
        if len(observed) == 0:
            raise ModelError(f"{panel.kind}: no readings before the training end")
        first = int(observed[0])
        history = train_end - first + 1
        cal = min(panel.steps_for_hours(24 * self.cal_days), history // 4)
        if cal < n + 1 or history < 3 * panel.steps_per_day:
            raise ModelError(f"{panel.kind}: {history} steps of history is too short to train "
                             f"and calibrate a {self.horizon_h:g} h forecaster")
        fit_end = train_end - cal
        self.point.fit(panel, fit_end)
        origins, p50, actual, night = self._calibrate(panel, train_end, cal, fit_end)
        self.selection = Selection(origins=origins, p50=p50, actual=actual, night=night)
        self.train_start_ts = panel.times[first].isoformat()
        self.fit_end_ts = panel.times[fit_end].isoformat()
        self.train_end_ts = panel.times[train_end].isoformat()

    def recalibrate(self, panel: Panel, end: int) -> None:
        """Refit the bands on the calibration window ending at grid index ``end`` (forecasts
        of the point model as it is, targets at or before ``end``), as a retraining would:
        the backtest refreshes them through its test window, as production retrains weekly."""
        n = panel.steps_for_hours(self.horizon_h)
        observed = np.flatnonzero(np.isfinite(panel.values[: end + 1]).any(axis=1))
        cal = min(panel.steps_for_hours(24 * self.cal_days), (end - int(observed[0]) + 1) // 4)
        if cal < n + 1:
            return
        known = panel.times.get_indexer([pd.Timestamp(self.fit_end_ts)]) if self.fit_end_ts \
            else np.array([-1])
        model_end = int(known[0]) if known[0] >= 0 else end - cal
        self._calibrate(panel, end, cal, model_end)

    def _calibrate(self, panel: Panel, end: int, cal: int, model_end: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Fit the bands on forecasts issued every ``cal_every_h`` in [end - cal, end) with
        targets at or before ``end``; returns (origins, p50 with night levels, actual, night).
        ``model_end``: the point model's last training row (earlier forecasts would be scored
        on its own training data)."""
        n = panel.steps_for_hours(self.horizon_h)
        every = panel.steps_for_hours(self.cal_every_h)
        origins = np.arange(end - cal, end, every)
        seen = panel.truncate(end)
        p50 = self.point.predict(seen, origins, n)
        actual = gather(panel.values, origins, n, upto=end)
        dark = night_matrix(seen)
        night = gather_mask(dark, origins, n)
        scale = robust_scale(panel.values[: end + 1])
        with np.errstate(all="ignore"):
            lower = np.nanmin(panel.values[: end + 1], axis=0)
        ids = panel.sensor_ids
        self.scale = {s: float(scale[j]) for j, s in enumerate(ids)}
        lead_edges = sorted({panel.steps_for_hours(h) for h in LEAD_GROUPS_H})
        factor = None
        if self.err_days > 0:
            k = max(1, int(np.ceil(self.err_days * 24 / self.horizon_h - 1e-9)))
            recent = recent_error(self.point, seen, origins, n, k, scale)
            # forecasts issued before model_end would be scored on the point model's own
            # training rows (too good): those calibration origins count as typical
            recent[origins - k * n < model_end] = np.nan
            factor = self.bands.fit_reference(recent, ids, k)
        self.bands.fit(p50, actual, scale, lead_edges,
                       {s: float(lower[j]) for j, s in enumerate(ids) if np.isfinite(lower[j])},
                       factor, night)
        self.bands.fit_night(panel.values[: end + 1], dark, ids)
        self.bands.fit_counts(panel.values[: end + 1], ids)
        _, sel_p50, _ = self.bands.apply_night(p50, p50, p50, night, ids)
        return origins, sel_p50, actual, night

    def predict(self, panel: Panel, origins: np.ndarray,
                n_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p10, p50, p90), each [origin, lead, sensor] in the sensors' units."""
        origins = np.asarray(origins, dtype=int)
        p50 = self.point.predict(panel, origins, n_steps)
        own = robust_scale(panel.values[: int(origins.min()) + 1])
        scale = np.array([self.scale.get(s, own[j]) for j, s in enumerate(panel.sensor_ids)])
        # the reference was measured on forecasts of the fitted horizon: score the same leads
        n = panel.steps_for_hours(self.horizon_h)
        recent = (recent_error(self.point, panel, origins, n, self.bands.err_k, scale)
                  if self.bands.err_k > 0 else None)
        night = None
        if self.bands.night:
            extra = max(0, int(origins.max()) + n_steps - (len(panel.times) - 1))
            night = gather_mask(night_matrix(panel, extra), origins, n_steps)
        return self.bands.apply(p50, scale, panel.sensor_ids,
                                self.bands.factor(recent, panel.sensor_ids), night)

    # -- persistence ------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "horizon_h": self.horizon_h, "cal_days": self.cal_days,
                "cal_every_h": self.cal_every_h, "err_days": self.err_days,
                "bands": self.bands.state(), "scale": self.scale, "point": self.point.state(),
                "train_start": self.train_start_ts, "fit_end": self.fit_end_ts,
                "train_end": self.train_end_ts}

    def save(self, folder: Path, extra: dict[str, Any]) -> list[str]:
        """Write the model files and ``metadata.json`` (with ``extra``); returns file names."""
        folder.mkdir(parents=True, exist_ok=True)
        files = self.point.save(folder) if isinstance(self.point, LgbmForecaster) else []
        meta = {**extra, "forecaster": self.metadata()}
        (folder / "metadata.json").write_text(json.dumps(meta, indent=2, default=str),
                                              encoding="utf-8")
        return [*files, "metadata.json"]

    @classmethod
    def load(cls, folder: Path, *, num_threads: int) -> tuple[Forecaster, dict[str, Any]]:
        path = folder / "metadata.json"
        if not path.is_file():
            raise ModelError(f"model metadata missing: {path}")
        meta = json.loads(path.read_text(encoding="utf-8"))
        f = meta["forecaster"]
        point: PointForecaster
        if "spec" in f["point"]:
            point = LgbmForecaster.load(folder, f["point"], num_threads=num_threads)
        elif f["name"] == "climatology":
            point = Climatology.from_state(f["point"])
        elif f["name"] in BASELINES:
            point = BASELINES[f["name"]]()
        else:
            raise ModelError(f"unknown model type in {path}")
        m = cls(point, horizon_h=f["horizon_h"], cal_days=f["cal_days"],
                cal_every_h=f["cal_every_h"], err_days=f.get("err_days", 0.0))
        m.bands = ResidualBands.from_state(f["bands"])
        m.scale = dict(f["scale"])
        m.train_start_ts, m.fit_end_ts, m.train_end_ts = (f["train_start"], f["fit_end"],
                                                          f["train_end"])
        return m, meta


def make_point(name: str, rung: dict[str, Any], *, num_threads: int,
               horizon_h: float) -> PointForecaster:
    """The point model of a ladder rung (``rung``: its spec from models/specs)."""
    if rung.get("type", "baseline") == "lightgbm":
        return LgbmForecaster(LgbmSpec.from_dict(name, rung), num_threads=num_threads,
                              max_horizon_h=horizon_h)
    if name not in BASELINES:
        raise ModelError(f"unknown baseline '{name}' (known: {', '.join(BASELINES)})")
    point: PointForecaster = BASELINES[name]()
    return point
