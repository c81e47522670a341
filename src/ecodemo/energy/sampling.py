"""How wide the error reduction is: a moving-block bootstrap over the backtest's test origins.

The benefit of a service is driven by its error reduction, the MAE of the counterfactual minus
the MAE of the model, summed over the kind's sensors, on the backtest's test origins (one a
day at local noon, 28 by default). Another month of test days would have given another
figure. This module says how different, without assuming a distribution of the errors:

- the unit resampled is a **test origin** (a day): all the leads forecast from it stay
  together, so the correlation between the hours of one forecast is kept;
- origins are drawn in **circular moving blocks** of ``block_days`` consecutive days
  (``ceil(pooled horizon / 24 h)``: 1 for the 24 h ladder horizon, whose forecasts from
  consecutive noons cover disjoint hours; 2 for 48 h, whose forecasts overlap), so the
  dependence between forecasts that share target hours stays inside a block;
- each resample draws as many origins as the backtest has, and recomputes every sensor's MAE
  as its sum of absolute errors over the drawn origins / its count of scored points there
  (the same pooled MAE the backtest reports, so the full sample gives the point figure);
- the interval is the percentile interval at ``LEVEL`` of ``RESAMPLES`` resamples drawn with
  the fixed ``SEED`` (the same store gives the same interval every time).

The model and the counterfactual are resampled on the **same** origins (a paired bootstrap):
it is their difference on the same days that is uncertain, not each MAE apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLES = 2000
SEED = 20251203
LEVEL = 0.95


@dataclass(frozen=True)
class PairedErrors:
    """One sensor (at one horizon) of the model and the counterfactual, per test origin.

    ``weight`` turns the sensor's MAE difference into the error unit and shares it between
    the horizons the sensor was scored at (the balance averages horizons)."""

    sensor_id: str
    weight: float
    model_abs_error_sum: np.ndarray
    model_n: np.ndarray
    counterfactual_abs_error_sum: np.ndarray
    counterfactual_n: np.ndarray


def block_days(horizon_h: float) -> int:
    """Consecutive days per block: enough that forecasts sharing target hours stay together."""
    return max(1, math.ceil(float(horizon_h) / 24.0 - 1e-9))


def block_indices(n_origins: int, block: int, resamples: int,
                  rng: np.random.Generator) -> np.ndarray:
    """[resamples, n_origins] origin indices drawn in circular blocks of ``block`` days."""
    if n_origins < 1:
        raise ValueError("no test origin to resample")
    block = min(max(1, block), n_origins)
    n_blocks = math.ceil(n_origins / block)
    starts = rng.integers(0, n_origins, size=(resamples, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]) % n_origins
    return idx.reshape(resamples, n_blocks * block)[:, :n_origins]


def reduction_on(pairs: list[PairedErrors], idx: np.ndarray) -> np.ndarray:
    """The error reduction for each row of origin indices ``idx`` ([resamples, n] -> [resamples]);
    NaN where a sensor has no scored point among the drawn origins."""
    out = np.zeros(idx.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        for p in pairs:
            mae_model = p.model_abs_error_sum[idx].sum(axis=1) / p.model_n[idx].sum(axis=1)
            mae_cf = (p.counterfactual_abs_error_sum[idx].sum(axis=1)
                      / p.counterfactual_n[idx].sum(axis=1))
            out += p.weight * (mae_cf - mae_model)
    return out


def reduction_interval(pairs: list[PairedErrors], block: int, *, resamples: int = RESAMPLES,
                       seed: int = SEED, level: float = LEVEL,
                       idx: np.ndarray | None = None) -> dict[str, Any]:
    """Point error reduction on all origins, and its bootstrap percentile interval.

    ``idx`` replaces the random draws (a test enumerates every resample by hand). The interval
    always contains the point (a percentile interval of a skewed statistic may not)."""
    n = len(pairs[0].model_n)
    if any(len(p.model_n) != n or len(p.counterfactual_n) != n for p in pairs):
        raise ValueError("the sensors were not scored on the same test origins")
    point = float(reduction_on(pairs, np.arange(n)[None, :])[0])
    if idx is None:
        idx = block_indices(n, block, resamples, np.random.default_rng(seed))
    samples = reduction_on(pairs, idx)
    finite = samples[np.isfinite(samples)]
    tail = (1.0 - level) / 2.0
    low = high = None
    if len(finite) and math.isfinite(point):
        lo, hi = np.quantile(finite, [tail, 1.0 - tail])
        low, high = min(float(lo), point), max(float(hi), point)
    return {"point": point, "low": low, "high": high,
            "resamples": int(idx.shape[0]), "resamples_without_points": int(len(samples)
                                                                            - len(finite)),
            "origins": n, "block_days": int(block), "seed": seed, "level": level}
