"""p10/p90 bands from empirical residual quantiles on a held-out calibration window.

Residuals ``(actual - p50) / scale`` (scale: the sensor's robust scale, so sensors of any size
pool together) are grouped by lead-time group and by the level of the p50 forecast (quartile
bins learned on the calibration set): a night-time zero and a rush-hour peak do not get the same
band. The 10th and 90th residual percentiles of each cell are added to p50. A cell with fewer
than ``min_count`` residuals uses its lead group's pooled quantiles. Bands are clipped below at
the sensor's training minimum (counts cannot be negative; small negative night-time PV stays
possible), and ordered p10 <= p50 <= p90.

Volatility scaling (optional, ``vol_window > 0``): a calibration window of three weeks cannot
know whether the coming days are calm or stormy, and a windy month after a calm one got bands
that covered 0.66 instead of 0.8. So each residual is also divided by a factor known at issue
time: the series' recent day-on-day change (mean ``|y[t] - y[t - season]|`` over the
``vol_window`` steps up to the origin; the seasonal difference, so a regular daily cycle does
not count as volatility) relative to its median over the calibration origins, clipped to
[1/4, 4] and square-rooted (the ratio comes from a few days of data: half-way, in log terms,
between ignoring it and trusting it fully). The band of a forecast issued after a volatile
spell is wider, after a calm one narrower; the quantiles are learned on the rescaled residuals,
so on the calibration window itself the band keeps its nominal coverage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

LEAD_GROUPS_H = (1.0, 3.0, 6.0, 12.0, 24.0, 48.0)
QUANTILES = (0.1, 0.9)
VOL_CLIP = (0.25, 4.0)    # bounds of the recent / typical volatility ratio
VOL_POWER = 0.5           # band width grows with the square root of that ratio


def recent_volatility(values: np.ndarray, origins: np.ndarray, window: int,
                      season: int) -> np.ndarray:
    """Mean ``|y[t] - y[t - season]|`` over ``t`` in ``(o - window, o]`` for each origin ``o``.

    ``values``: [time, sensor]; returns [origin, sensor] in sensor units (NaN without data).
    Reads only ``values[: o + 1]``: known at the issue time.
    """
    out = np.full((len(origins), values.shape[1]), np.nan)
    for i, o in enumerate(np.asarray(origins, dtype=int)):
        start = max(0, o - window - season + 1)
        win = values[start: o + 1]
        if len(win) <= season:
            continue
        with np.errstate(all="ignore"):
            diff = np.abs(win[season:] - win[:-season])
            has = np.isfinite(diff).any(axis=0)
            out[i, has] = np.nanmean(diff[:, has], axis=0)
    return out


@dataclass
class ResidualBands:
    lead_edges: list[int] = field(default_factory=list)   # upper lead (steps) of each group
    level_edges: list[float] = field(default_factory=list)
    table: list[list[list[float]]] = field(default_factory=list)  # [group][level] -> [q10,q90]
    pooled: list[list[float]] = field(default_factory=list)       # [group] -> [q10, q90]
    lower: dict[str, float] = field(default_factory=dict)          # per sensor
    min_count: int = 30
    vol_window: int = 0                                           # steps; 0: no scaling
    vol_season: int = 1                                           # steps (one day)
    vol_ref: dict[str, float] = field(default_factory=dict)       # typical volatility, per sensor

    def factor(self, values: np.ndarray, origins: np.ndarray,
               sensor_ids: list[str]) -> np.ndarray:
        """Band width multiplier [origin, sensor] from the volatility before each origin."""
        ones = np.ones((len(origins), len(sensor_ids)))
        if self.vol_window <= 0:
            return ones
        vol = recent_volatility(values, origins, self.vol_window, self.vol_season)
        ref = np.array([self.vol_ref.get(s, np.nan) for s in sensor_ids])
        with np.errstate(all="ignore"):
            ratio = vol / ref[None, :]
        ratio = np.where(np.isfinite(ratio), ratio, 1.0)   # unknown sensor or no data: as typical
        return np.clip(ratio, *VOL_CLIP) ** VOL_POWER

    def fit_volatility(self, values: np.ndarray, origins: np.ndarray, sensor_ids: list[str],
                       window: int, season: int) -> np.ndarray:
        """Learn each sensor's typical volatility on the calibration origins; their factors."""
        self.vol_window, self.vol_season = int(window), max(1, int(season))
        vol = recent_volatility(values, origins, self.vol_window, self.vol_season)
        with np.errstate(all="ignore"):
            ref = np.nanmedian(vol, axis=0) if len(origins) else np.full(len(sensor_ids), np.nan)
        self.vol_ref = {s: float(ref[j]) for j, s in enumerate(sensor_ids)
                        if np.isfinite(ref[j]) and ref[j] > 0}
        return self.factor(values, origins, sensor_ids)

    def _group(self, leads: np.ndarray) -> np.ndarray:
        return np.minimum(np.searchsorted(self.lead_edges, leads, side="left"),
                          len(self.lead_edges) - 1)

    def fit(self, p50: np.ndarray, actual: np.ndarray, scale: np.ndarray,
            lead_edges: list[int], lower: dict[str, float],
            factor: np.ndarray | None = None) -> None:
        """p50/actual: [origin, lead, sensor] in sensor units; scale: [sensor];
        factor: [origin, sensor] volatility multipliers (None: 1)."""
        self.lead_edges, self.lower = list(lead_edges), dict(lower)
        z = p50 / scale[None, None, :]
        width = scale[None, None, :] * (1.0 if factor is None else factor[:, None, :])
        r = (actual - p50) / width
        leads = np.broadcast_to(np.arange(1, p50.shape[1] + 1)[None, :, None], p50.shape)
        ok = np.isfinite(r) & np.isfinite(z)
        z, r, g = z[ok], r[ok], self._group(leads[ok])
        self.level_edges = ([float(v) for v in np.quantile(z, [0.25, 0.5, 0.75])]
                            if len(z) else [])
        lvl = np.searchsorted(self.level_edges, z)
        self.table, self.pooled = [], []
        for gi in range(len(self.lead_edges)):
            in_g = g == gi
            rg = r[in_g] if in_g.sum() >= self.min_count else r
            pooled = (np.quantile(rg, QUANTILES).tolist() if len(rg) else [0.0, 0.0])
            self.pooled.append(pooled)
            row = []
            for li in range(len(self.level_edges) + 1):
                cell = r[in_g & (lvl == li)]
                row.append(np.quantile(cell, QUANTILES).tolist()
                           if len(cell) >= self.min_count else pooled)
            self.table.append(row)

    def apply(self, p50: np.ndarray, scale: np.ndarray, sensor_ids: list[str],
              factor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p10, p50, p90) arrays shaped like ``p50`` ([origin, lead, sensor]);
        ``factor``: [origin, sensor] volatility multipliers (None: 1)."""
        z = p50 / scale[None, None, :]
        leads = np.broadcast_to(np.arange(1, p50.shape[1] + 1)[None, :, None], p50.shape)
        g = self._group(leads)
        lvl = np.searchsorted(self.level_edges, np.nan_to_num(z))
        tab = np.asarray(self.table, dtype=float)           # [G, L, 2]
        q = tab[g, np.minimum(lvl, tab.shape[1] - 1)]      # [..., 2]
        width = scale[None, None, :] * (1.0 if factor is None else factor[:, None, :])
        lo = p50 + q[..., 0] * width
        hi = p50 + q[..., 1] * width
        floor = np.array([self.lower.get(s, -np.inf) for s in sensor_ids])[None, None, :]
        mid = np.maximum(p50, floor)
        lo = np.minimum(np.maximum(lo, floor), mid)
        hi = np.maximum(hi, mid)
        return lo, mid, hi

    def state(self) -> dict[str, Any]:
        return {"lead_edges": self.lead_edges, "level_edges": self.level_edges,
                "table": self.table, "pooled": self.pooled, "lower": self.lower,
                "min_count": self.min_count, "vol_window": self.vol_window,
                "vol_season": self.vol_season, "vol_ref": self.vol_ref}

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> ResidualBands:
        return cls(lead_edges=list(d["lead_edges"]), level_edges=list(d["level_edges"]),
                   table=d["table"], pooled=d["pooled"], lower=dict(d["lower"]),
                   min_count=int(d.get("min_count", 30)),
                   # models saved before volatility scaling: no scaling (their bands as fitted)
                   vol_window=int(d.get("vol_window", 0)), vol_season=int(d.get("vol_season", 1)),
                   vol_ref=dict(d.get("vol_ref", {})))
