"""No-AI baselines that cost no training: persistence, seasonal naive, climatology profile.

All point forecasters share one interface: ``fit(panel, fit_end)`` learns from grid rows
``<= fit_end``; ``predict(panel, origins, n_steps)`` returns an array [origin, lead, sensor] of
p50 forecasts in the sensors' units for grid rows ``origin + 1 .. origin + n_steps``, reading
only ``values[: origin + 1]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ecodemo.cadence import season_hours
from ecodemo.models.features import calendar_frame
from ecodemo.models.panel import Panel
from ecodemo.units import RENEWABLE_KINDS


class PointForecaster(Protocol):
    name: str

    def fit(self, panel: Panel, fit_end: int) -> None: ...

    def predict(self, panel: Panel, origins: np.ndarray, n_steps: int) -> np.ndarray: ...

    def state(self) -> dict[str, Any]: ...


def forward_fill(values: np.ndarray) -> np.ndarray:
    """Carry the last finite value forward in time (column-wise); causal by construction."""
    idx = np.where(np.isfinite(values), np.arange(len(values))[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = values[idx, np.arange(values.shape[1])[None, :]]
    return out


def season_steps(panel: Panel) -> int:
    """Seasonal period in grid steps (:func:`ecodemo.cadence.season_hours`)."""
    return panel.steps_for_hours(season_hours(panel.kind))


def _targets(origins: np.ndarray, n_steps: int) -> np.ndarray:
    return origins[:, None] + np.arange(1, n_steps + 1)[None, :]


class Persistence:
    """The last reading at or before the issue time, for every lead."""

    name = "persistence"

    def fit(self, panel: Panel, fit_end: int) -> None:
        return None

    def predict(self, panel: Panel, origins: np.ndarray, n_steps: int) -> np.ndarray:
        last = forward_fill(panel.values)[origins]            # [O, S]
        return np.repeat(last[:, None, :], n_steps, axis=1)

    def state(self) -> dict[str, Any]:
        return {}


class SeasonalNaive:
    """Same time one season earlier (yesterday for solar/wind, last week for transport).

    For leads beyond one season the value from whole seasons back that is still at or before
    the issue time is used; a missing value falls back to the seasons before it, then to
    persistence.
    """

    name = "seasonal_naive"

    def fit(self, panel: Panel, fit_end: int) -> None:
        return None

    def predict(self, panel: Panel, origins: np.ndarray, n_steps: int) -> np.ndarray:
        period = season_steps(panel)
        vals = panel.values
        # seasonal forward fill: a gap takes the value one season earlier (causal)
        filled = vals.copy()
        for i in range(period, len(filled)):
            row = filled[i]
            gap = ~np.isfinite(row)
            if gap.any():
                row[gap] = filled[i - period][gap]
        targets = _targets(origins, n_steps)                  # [O, n]
        leads = targets - origins[:, None]
        back = -(-leads // period) * period                   # whole seasons, >= lead
        src = targets - back
        out = np.where((src >= 0)[..., None], filled[np.clip(src, 0, None)], np.nan)
        persist = Persistence().predict(panel, origins, n_steps)
        return np.where(np.isfinite(out), out, persist)

    def state(self) -> dict[str, Any]:
        return {}


class Climatology:
    """Per sensor profile from the training window: median by local time slot and day key.

    Transport: day key = day type (working day, Saturday, Sunday/holiday) since demand follows
    the week. Renewables: day key = month (the weather has no week), falling back to the time
    slot alone when the training window lacks that month: the slot's median over the last
    ``RECENT_DAYS`` days of training where it has values there (a December after a history
    that starts in January is closer to November than to the year's median, which summer
    dominates), else over the whole window.
    """

    RECENT_DAYS = 28

    name = "climatology"

    def __init__(self) -> None:
        self.table: dict[str, dict[str, float]] = {}
        self.fallback: dict[str, dict[str, float]] = {}

    def _keys(self, panel: Panel, times: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        cal = calendar_frame(times, panel.sensors[0].timezone)
        slot = np.round(cal["hour"].to_numpy() * 4).astype(int)  # quarter-hour slots
        day = (times.tz_convert(panel.sensors[0].timezone).month.to_numpy()
               if panel.kind in RENEWABLE_KINDS else cal["daytype"].to_numpy().astype(int))
        return day * 1000 + slot, slot

    def fit(self, panel: Panel, fit_end: int) -> None:
        keys, slots = self._keys(panel, panel.times[: fit_end + 1])
        self.table, self.fallback = {}, {}
        for j, sid in enumerate(panel.sensor_ids):
            v = panel.values[: fit_end + 1, j]
            ok = np.isfinite(v)
            frame = pd.DataFrame({"k": keys[ok], "s": slots[ok], "v": v[ok]})
            self.table[sid] = {str(k): float(x) for k, x in frame.groupby("k")["v"].median()
                               .items()}
            recent = frame[np.flatnonzero(ok) > fit_end - panel.steps_for_hours(
                24 * self.RECENT_DAYS)]
            self.fallback[sid] = {str(k): float(x) for part in (frame, recent)
                                  for k, x in part.groupby("s")["v"].median().items()}

    def predict(self, panel: Panel, origins: np.ndarray, n_steps: int) -> np.ndarray:
        targets = _targets(origins, n_steps)
        ext = panel.extend(max(0, int(targets.max()) - (len(panel.times) - 1)))
        need, inverse = np.unique(targets, return_inverse=True)
        keys, slots = self._keys(panel, ext.times[need])
        out = np.full((len(origins), n_steps, len(panel.sensors)), np.nan)
        for j, sid in enumerate(panel.sensor_ids):
            table, fb = self.table.get(sid, {}), self.fallback.get(sid, {})
            col = np.array([table.get(str(k), fb.get(str(sl), np.nan))
                            for k, sl in zip(keys, slots, strict=True)])
            out[:, :, j] = col[inverse.reshape(targets.shape)]
        return out

    def state(self) -> dict[str, Any]:
        return {"table": self.table, "fallback": self.fallback}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Climatology:
        c = cls()
        c.table, c.fallback = state["table"], state["fallback"]
        return c


BASELINES: dict[str, Callable[[], PointForecaster]] = {
    "persistence": Persistence, "seasonal_naive": SeasonalNaive, "climatology": Climatology}
