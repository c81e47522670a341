"""The backtest protocol: test origins, the day-ahead window, and the figures of each rung.

Choose before you test. Every rung is trained once on data up to the first test origin; its
calibration forecasts (issued every few hours after the point model's own training data and
before the first test origin, see :class:`ecodemo.models.forecaster.Selection`) are the
**selection** origins the ladder chooses on; the **test** origins, one per day at local noon
(the sensors' time zone), come after, and every rung's reported figures are on them only.

At each test origin a rung forecasts leads 1 .. ``fit_h`` (the pooled horizon, and at least to
the end of the next local day: 37 h from noon on a 25 h DST day). Figures:

- pooled over leads 1 .. horizon (MAE, nMAE, skill, coverage; per sensor and ``__all__``), and
  coverage per lead group;
- **day-ahead**: the same origins at noon, the targets of the next local calendar day
  (leads 12-36 h, as authorities issue a day-ahead forecast), skill against seasonal naive
  issued at the same noon.

The bands are refreshed every ``backtest.refresh_bands_days`` (7) days of test origins with
the targets known by then (:func:`predict_refreshing`), as production retrains weekly.

A daily grid (step >= 1 day) has no noon: its origins are every day and day-ahead is lead 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ecodemo.errors import ModelError
from ecodemo.models.baselines import PointForecaster
from ecodemo.models.calibration import LEAD_GROUPS_H, ResidualBands
from ecodemo.models.features import WEATHER_VARIABLES
from ecodemo.models.forecaster import Forecaster, Selection
from ecodemo.models.metrics import ALL, coverage_by_lead, score
from ecodemo.models.panel import Panel

MIN_TRAIN_DAYS = 28          # history required before the first test origin
ISSUE_HOUR_LOCAL = 12.0      # day-ahead forecasts are issued at noon, local time
DAY_AHEAD_FIT_H = 37.0       # noon to the end of the next local day, 25 h on DST's last day


def fit_hours(horizon_h: float) -> float:
    """Leads every rung forecasts in the backtest: the horizon, and the next local day."""
    return max(float(horizon_h), DAY_AHEAD_FIT_H)


def _daily(panel: Panel) -> bool:
    return panel.step >= pd.Timedelta(days=1)


def noon_origins(panel: Panel, n_fit: int, folds: int) -> np.ndarray:
    """The last ``folds`` local-noon grid indices (every day on a daily grid) whose whole
    ``n_fit``-step forecast ends at or before the last reading, after MIN_TRAIN_DAYS of
    history."""
    last = panel.last_observed_index()
    observed = np.flatnonzero(np.isfinite(panel.values).any(axis=1))
    earliest = int(observed[0]) + panel.steps_for_hours(24 * MIN_TRAIN_DAYS)
    if _daily(panel):
        candidates = np.arange(len(panel.times))
    else:
        local = panel.times.tz_convert(panel.sensors[0].timezone)
        minutes = local.hour * 60 + local.minute
        before_noon = np.asarray(minutes <= ISSUE_HOUR_LOCAL * 60)
        day = pd.Series(np.asarray(local.normalize().tz_localize(None)))
        idx = pd.Series(np.arange(len(panel.times)))
        # the latest grid time at or before local noon, each local day
        candidates = idx[before_noon].groupby(day[before_noon]).max().to_numpy()
    ok = candidates[(candidates + n_fit <= last) & (candidates >= earliest)]
    if len(ok) == 0:
        raise ModelError(f"kind '{panel.kind}': not enough history for a backtest "
                         f"(need {MIN_TRAIN_DAYS} days plus the horizon)")
    return np.asarray(ok[-folds:], dtype=int)


def day_ahead_mask(panel: Panel, origins: np.ndarray, n_steps: int) -> np.ndarray:
    """[origin, lead] True where the target lies on the local calendar day after the origin's
    (the origin's own day on a daily grid: its value is the next day's)."""
    if _daily(panel):
        out = np.zeros((len(origins), n_steps), dtype=bool)
        out[:, 0] = True
        return out
    tz = panel.sensors[0].timezone
    ext = panel.extend(max(0, int(origins.max()) + n_steps - (len(panel.times) - 1)))
    days = ext.times.tz_convert(tz).normalize().tz_localize(None).as_unit("ns").asi8
    targets = origins[:, None] + np.arange(1, n_steps + 1)[None, :]
    # local dates as naive midnights: a 23 h or 25 h day is still one date later
    return days[targets] - days[origins][:, None] == pd.Timedelta(days=1).value


def _window(panel: Panel, origins: np.ndarray, n_steps: int) -> dict[str, Any]:
    return {"first_origin": panel.times[int(origins[0])].isoformat(),
            "last_origin": panel.times[int(origins[-1])].isoformat(),
            "folds": int(len(origins)), "leads": int(n_steps)}


def protocol(panel: Panel, selection: Selection, test: np.ndarray, n_pooled: int,
             n_fit: int) -> dict[str, Any]:
    """The backtest JSON's ``protocol``: where the choice was made, where it was tested."""
    return {"selection": {**_window(panel, selection.origins, n_pooled),
                          "what": "calibration forecasts of each rung, issued after its point "
                                  "model's training data and before the first test origin"},
            "test": {**_window(panel, test, n_fit),
                     "what": "one origin per day at local noon; figures of every rung"}}


def selection_figures(sel: Selection, reference: Selection, sensor_ids: list[str],
                      n_pooled: int) -> dict[str, Any]:
    """nMAE and skill of a rung's calibration forecasts at leads 1 .. ``n_pooled``."""
    night = sel.night[:, :n_pooled] if sel.night is not None else None
    m = score(sel.actual[:, :n_pooled], sel.p50[:, :n_pooled], sel.p50[:, :n_pooled],
              sel.p50[:, :n_pooled], reference.p50[:, :n_pooled], sensor_ids, night)[ALL]
    return {"nmae": m["nmae"], "skill_vs_seasonal_naive": m["skill_vs_seasonal_naive"]}


def figures_on_test(panel: Panel, actual: np.ndarray, pred: tuple[np.ndarray, ...],
                 reference: np.ndarray, night: np.ndarray | None, n_pooled: int,
                 ahead: np.ndarray) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(pooled figures per sensor and ``__all__``, extra ``__all__`` figures: coverage per lead
    group and day-ahead) of one rung on the test origins."""
    p10, p50, p90 = pred
    cut = slice(0, n_pooled)
    nt = night[:, cut] if night is not None else None
    pooled = score(actual[:, cut], p10[:, cut], p50[:, cut], p90[:, cut], reference[:, cut],
                   panel.sensor_ids, nt)
    step_h = panel.step / pd.Timedelta(hours=1)
    by_lead = coverage_by_lead(actual, p10, p90, step_h, LEAD_GROUPS_H, night)
    masked = np.where(ahead[:, :, None], actual, np.nan)
    da = score(masked, p10, p50, p90, reference, panel.sensor_ids, night)[ALL]
    day_ahead = {k: da[k] for k in ("n", "mae", "nmae", "skill_vs_seasonal_naive",
                                    "coverage_p10_p90", "coverage_night")}
    day_ahead["origins"] = int(len(actual))
    return pooled, {"coverage_by_lead_h": by_lead, "day_ahead": day_ahead}


def weather_provenance(panel: Panel, origins: np.ndarray, n_steps: int, *,
                       observed_stands_in: bool) -> dict[str, Any]:
    """Where the weather of the targets of forecasts issued at ``origins`` comes from:
    ``forecast_as_issued`` when forecasts issued by each origin cover at least half of its
    targets, else ``observed_standing_in`` (only where allowed: backtests, never a forecast of
    the future) when the panel has observed weather, else ``none``; with the variables."""
    issued = panel.issued_weather
    if issued is not None:
        ext = panel.extend(max(0, int(origins.max()) + n_steps - (len(panel.times) - 1)))
        targets = (origins[:, None] + np.arange(1, n_steps + 1)[None, :]).ravel()
        asof = np.repeat(origins, n_steps)
        if issued.covers(ext.times[targets], ext.times[asof]) >= 0.5:
            return {"provenance": "forecast_as_issued", "variables": issued.variables}
    if observed_stands_in and panel.weather is not None:
        observed = [v for v in WEATHER_VARIABLES if v in panel.weather.columns]
        if observed:
            return {"provenance": "observed_standing_in", "variables": observed}
    return {"provenance": "none", "variables": []}


def predict_refreshing(f: Forecaster, panel: Panel, origins: np.ndarray, n_steps: int,
                       refresh_days: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forecasts at the test origins, the bands refitted every ``refresh_days`` days of test
    origins on the calibration window ending at that origin (targets known by then), as
    production's weekly retraining recalibrates them; the point model stays the one trained
    before the test (its retraining would multiply the backtest's cost). 0: never. The
    forecaster's bands and scales are restored afterwards: the registered model has no test data
    in them.
    """
    if refresh_days <= 0 or len(origins) == 0:
        return f.predict(panel, origins, n_steps)
    saved, scale = ResidualBands.from_state(f.bands.state()), dict(f.scale)
    # test origins are daily (local noon): a refresh every ``refresh_days`` of them
    chunk = np.arange(len(origins)) // max(1, int(round(refresh_days)))
    parts = []
    point = f.point
    # successive calibration windows overlap: each origin's p50 is computed once (a forecast
    # reads nothing after its origin, so it does not depend on where the panel is cut)
    f.point = _OnceEach(point, panel)  # type: ignore[assignment]
    try:
        for c in np.unique(chunk):
            these = origins[chunk == c]
            if c > 0:
                f.recalibrate(panel, int(these[0]))
            parts.append(f.predict(panel, these, n_steps))
    finally:
        f.point = point
    f.bands, f.scale = saved, scale
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))


class _OnceEach:
    """A point model's predictions, each (origin, leads) computed once on the whole panel."""

    def __init__(self, point: PointForecaster, panel: Panel) -> None:
        self.point, self.panel, self.name = point, panel, point.name
        self.done: dict[tuple[int, int], np.ndarray] = {}

    def predict(self, panel: Panel, origins: np.ndarray, n_steps: int) -> np.ndarray:
        origins = np.asarray(origins, dtype=int)
        todo = [int(o) for o in np.unique(origins) if (int(o), n_steps) not in self.done]
        if todo:
            got = self.point.predict(self.panel, np.array(todo), n_steps)
            self.done.update({(o, n_steps): got[i] for i, o in enumerate(todo)})
        return np.stack([self.done[(int(o), n_steps)] for o in origins])
