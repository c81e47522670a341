"""p10/p90 bands from empirical residual quantiles on a held-out calibration window.

Residuals ``(actual - p50) / scale`` (scale: the sensor's robust scale, so sensors of any size
pool together) are grouped by lead-time group and by the level of the p50 forecast (quartile
bins learned on the calibration set): a night-time zero and a rush-hour peak do not get the same
band. The 10th and 90th residual percentiles of each cell are added to p50. A cell with fewer
than ``min_count`` residuals uses its lead group's pooled quantiles. Bands are clipped below at
the sensor's training minimum (counts cannot be negative; small negative night-time PV stays
possible), and ordered p10 <= p50 <= p90.

Recent-error scaling (optional, ``err_ref`` set): a calibration window of three weeks cannot
know whether the coming days are easy or hard to forecast, and a stormy month after a calmer
one got wind bands covering 0.66 instead of 0.8. So each residual is also divided by a factor
known at issue time: the point model's own mean absolute error (in sensor scales) over the
forecasts it would have issued 1, 2 .. ``err_k`` horizons before the origin (their targets are
all at or before the issue time), relative to the median of that figure over the calibration
origins, clipped to [1/4, 4] and square-rooted (a few days of errors make a noisy ratio: half-way,
in log terms, between ignoring it and trusting it fully). The quantiles are learned on the
rescaled residuals, so on the calibration window the band keeps its nominal coverage; after a
spell of large errors the band widens, after a spell of small ones it narrows.

Solar nights (``night`` masks, see :func:`ecodemo.solar.night_mask`): the sun is down, so
the output is a physical constant, not a forecast. A night target gets the sensor's own night
level from training as p50 and the 10th-90th percentiles of its night readings as the band:
zero width where nights read a constant 0, a narrow range where a regional aggregate reads small
negatives. Night residuals are left out of the day cells' quantiles.

Counts (a sensor whose training values are all whole numbers: bikes, vehicles): the quantity
takes whole values only, so its p10 and p90 are too; the band is widened to the whole numbers
around it (floor of p10, ceiling of p90). For sparse, small counts (a few bikes an hour) a band
such as [0.3, 2.6] would otherwise miss every hour with 0 bikes, a third of the hours when the
mean is about 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

LEAD_GROUPS_H = (1.0, 3.0, 6.0, 12.0, 24.0, 48.0)
QUANTILES = (0.1, 0.9)
ERR_CLIP = (0.25, 4.0)    # bounds of the recent / typical error ratio
ERR_POWER = 0.5           # band width grows with the square root of that ratio


@dataclass
class ResidualBands:
    lead_edges: list[int] = field(default_factory=list)   # upper lead (steps) of each group
    level_edges: list[float] = field(default_factory=list)
    table: list[list[list[float]]] = field(default_factory=list)  # [group][level] -> [q10,q90]
    pooled: list[list[float]] = field(default_factory=list)       # [group] -> [q10, q90]
    lower: dict[str, float] = field(default_factory=dict)          # per sensor
    min_count: int = 30
    err_k: int = 0                                                # past forecasts; 0: off
    err_ref: dict[str, float] = field(default_factory=dict)       # typical recent error
    night: dict[str, list[float]] = field(default_factory=dict)   # sensor -> [q10, q50, q90]
    counts: list[str] = field(default_factory=list)               # sensors with whole values
    night_min_count: int = 20

    def fit_night(self, values: np.ndarray, night: np.ndarray | None,
                  sensor_ids: list[str]) -> None:
        """Each sensor's night level from its training ``values`` [time, sensor] at ``night``."""
        self.night = {}
        if night is None:
            return
        for j, sid in enumerate(sensor_ids):
            v = values[night[:, j], j]
            v = v[np.isfinite(v)]
            if len(v) >= self.night_min_count:
                self.night[sid] = [float(x) for x in np.quantile(v, [0.1, 0.5, 0.9])]

    def fit_counts(self, values: np.ndarray, sensor_ids: list[str]) -> None:
        """Remember the sensors whose training ``values`` [time, sensor] are whole numbers."""
        with np.errstate(invalid="ignore"):
            whole = [(v := values[np.isfinite(values[:, j]), j]).size > 0
                     and bool(np.all(v == np.round(v))) for j in range(values.shape[1])]
        self.counts = [s for s, w in zip(sensor_ids, whole, strict=True) if w]

    def night_levels(self, sensor_ids: list[str]) -> np.ndarray:
        """[3, sensor] night q10/q50/q90 (NaN for a sensor without a night level)."""
        return np.array([self.night.get(s, [np.nan] * 3) for s in sensor_ids]).T.reshape(
            3, len(sensor_ids))

    def apply_night(self, lo: np.ndarray, mid: np.ndarray, hi: np.ndarray,
                    night: np.ndarray | None, sensor_ids: list[str]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Night targets ([origin, lead, sensor] mask) take the sensor's night level."""
        if night is None or not self.night:
            return lo, mid, hi
        lv = self.night_levels(sensor_ids)
        use = night & np.isfinite(lv[1])[None, None, :]
        return (np.where(use, lv[0][None, None, :], lo), np.where(use, lv[1][None, None, :], mid),
                np.where(use, lv[2][None, None, :], hi))

    def factor(self, recent: np.ndarray | None, sensor_ids: list[str]) -> np.ndarray | None:
        """Band width multipliers [origin, sensor] from the recent errors [origin, sensor]
        (None when the scaling is off); an unknown sensor or missing errors count as typical."""
        if recent is None or self.err_k <= 0:
            return None
        ref = np.array([self.err_ref.get(s, np.nan) for s in sensor_ids])
        with np.errstate(all="ignore"):
            ratio = recent / ref[None, :]
        ratio = np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1.0)
        return np.clip(ratio, *ERR_CLIP) ** ERR_POWER

    def fit_reference(self, recent: np.ndarray, sensor_ids: list[str],
                      err_k: int) -> np.ndarray | None:
        """Learn each sensor's typical recent error on the calibration origins ([origin, sensor];
        NaN where unknown); returns those origins' factors."""
        self.err_k = int(err_k)
        with np.errstate(all="ignore"):
            ref = (np.nanmedian(recent, axis=0) if len(recent)
                   else np.full(len(sensor_ids), np.nan))
        self.err_ref = {s: float(ref[j]) for j, s in enumerate(sensor_ids)
                        if np.isfinite(ref[j]) and ref[j] > 0}
        return self.factor(recent, sensor_ids)

    def _group(self, leads: np.ndarray) -> np.ndarray:
        return np.minimum(np.searchsorted(self.lead_edges, leads, side="left"),
                          len(self.lead_edges) - 1)

    def fit(self, p50: np.ndarray, actual: np.ndarray, scale: np.ndarray,
            lead_edges: list[int], lower: dict[str, float],
            factor: np.ndarray | None = None, night: np.ndarray | None = None) -> None:
        """p50/actual: [origin, lead, sensor] in sensor units; scale: [sensor];
        factor: [origin, sensor] recent-error multipliers (None: 1); night: [origin, lead,
        sensor] targets whose band is the night level (left out here)."""
        self.lead_edges, self.lower = list(lead_edges), dict(lower)
        z = p50 / scale[None, None, :]
        width = scale[None, None, :] * (1.0 if factor is None else factor[:, None, :])
        r = (actual - p50) / width
        leads = np.broadcast_to(np.arange(1, p50.shape[1] + 1)[None, :, None], p50.shape)
        ok = np.isfinite(r) & np.isfinite(z)
        if night is not None:
            ok &= ~night
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
              factor: np.ndarray | None = None,
              night: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p10, p50, p90) arrays shaped like ``p50`` ([origin, lead, sensor]);
        ``factor``: [origin, sensor] recent-error multipliers (None: 1); ``night``: [origin,
        lead, sensor] targets that take the night level."""
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
        if self.counts:
            whole = np.isin(sensor_ids, self.counts)[None, None, :]
            lo, hi = np.where(whole, np.floor(lo), lo), np.where(whole, np.ceil(hi), hi)
        return self.apply_night(lo, mid, hi, night, sensor_ids)

    def state(self) -> dict[str, Any]:
        return {"lead_edges": self.lead_edges, "level_edges": self.level_edges,
                "table": self.table, "pooled": self.pooled, "lower": self.lower,
                "min_count": self.min_count, "err_k": self.err_k, "err_ref": self.err_ref,
                "night": self.night, "counts": self.counts}

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> ResidualBands:
        return cls(lead_edges=list(d["lead_edges"]), level_edges=list(d["level_edges"]),
                   table=d["table"], pooled=d["pooled"], lower=dict(d["lower"]),
                   min_count=int(d.get("min_count", 30)),
                   # models saved before recent-error scaling: none (their bands as fitted)
                   err_k=int(d.get("err_k", 0)), err_ref=dict(d.get("err_ref", {})),
                   # models saved before night levels: none (their bands as fitted)
                   night=dict(d.get("night", {})), counts=list(d.get("counts", [])))
