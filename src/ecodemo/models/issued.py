"""Weather forecasts as issued, looked up as of a time: what was known then about a target time.

Built from the long rows of ``weather_forecasts`` (variable, issued_at, valid_at, value; hourly
valid times). :meth:`IssuedWeather.at` answers, for target grid times ``t`` and as-of times
``asof``, the value of the latest forecast issued at or before ``asof`` for the hour of ``t``
(NaN when none was). Issue times are rounded **up** to the hour and as-of times **down**, so a
forecast is never read before it existed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_HOUR_NS = 3_600_000_000_000
_SHIFT = np.int64(1) << np.int64(32)


def _hours(ts: pd.Series | pd.DatetimeIndex, up: bool = False) -> np.ndarray:
    ns = pd.DatetimeIndex(ts).as_unit("ns").asi8
    return (-(-ns // _HOUR_NS) if up else ns // _HOUR_NS).astype(np.int64)


@dataclass(frozen=True)
class IssuedWeather:
    """Per variable: sorted keys (valid hour << 32 | issue hour) and their values."""

    keys: dict[str, np.ndarray]
    values: dict[str, np.ndarray]

    @classmethod
    def from_long(cls, frame: pd.DataFrame) -> IssuedWeather | None:
        """From rows with columns variable, issued_at, valid_at, value (None when empty)."""
        if frame.empty:
            return None
        keys, values = {}, {}
        for var, g in frame.groupby("variable", sort=True):
            k = (_hours(g["valid_at"]) * _SHIFT) + _hours(g["issued_at"], up=True)
            order = np.argsort(k, kind="stable")
            keys[str(var)] = k[order]
            values[str(var)] = g["value"].to_numpy(dtype=float)[order]
        return cls(keys=keys, values=values)

    @property
    def variables(self) -> list[str]:
        return sorted(self.keys)

    def at(self, variable: str, t: pd.DatetimeIndex, asof: pd.DatetimeIndex) -> np.ndarray:
        """Values for target times ``t`` as known at ``asof`` (same length); NaN if unknown."""
        out = np.full(len(t), np.nan)
        keys = self.keys.get(variable)
        if keys is None or len(t) == 0:
            return out
        valid_h = _hours(t)
        query = valid_h * _SHIFT + _hours(asof)
        pos = np.searchsorted(keys, query, side="right") - 1
        ok = pos >= 0
        hit = np.zeros(len(t), dtype=bool)
        hit[ok] = (keys[pos[ok]] >> np.int64(32)) == valid_h[ok]
        out[hit] = self.values[variable][pos[hit]]
        return out

    def covers(self, t: pd.DatetimeIndex, asof: pd.DatetimeIndex) -> float:
        """Share of (t, asof) pairs with a forecast of at least one variable."""
        if len(t) == 0:
            return 0.0
        got = np.zeros(len(t), dtype=bool)
        for var in self.keys:
            got |= np.isfinite(self.at(var, t, asof))
        return float(got.mean())
