"""Accuracy of [origin, lead, sensor] forecasts against actuals.

Per sensor, in the sensor's unit: MAE, RMSE, nMAE = MAE / mean(|actual|) over the evaluated
points, skill = 1 - MAE_model / MAE_seasonal_naive (on the same points), p10-p90 coverage (share
of actuals inside [p10, p90]; 0.8 is ideal), pinball loss (mean over q = 0.1, 0.5, 0.9).

Aggregate ``'__all__'`` (sensors of one kind may have different units and sizes, so every
sensor counts equally): MAE and RMSE are means of the per-sensor values; nMAE is the mean of
per-sensor nMAEs; skill = 1 - mean nMAE_model / mean nMAE_seasonal_naive; coverage is pooled
over all points; pinball is the mean of per-sensor pinball / mean(|actual|).
"""

from __future__ import annotations

from typing import Any

import numpy as np

ALL = "__all__"


def _pinball(actual: np.ndarray, pred: np.ndarray, q: float) -> float:
    diff = actual - pred
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def _nan(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def score(actual: np.ndarray, p10: np.ndarray, p50: np.ndarray, p90: np.ndarray,
          reference: np.ndarray, sensor_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Metrics per sensor id and ``'__all__'``; ``reference`` is the seasonal-naive p50."""
    out: dict[str, dict[str, Any]] = {}
    nm, nm_ref, pin_n, cov_hits, cov_n = [], [], [], 0, 0
    maes, rmses = [], []
    for j, sid in enumerate(sensor_ids):
        a, m, r = actual[..., j].ravel(), p50[..., j].ravel(), reference[..., j].ravel()
        lo, hi = p10[..., j].ravel(), p90[..., j].ravel()
        ok = np.isfinite(a) & np.isfinite(m) & np.isfinite(r)
        n = int(ok.sum())
        if n == 0:
            out[sid] = {"n": 0, "mae": None, "rmse": None, "nmae": None,
                        "skill_vs_seasonal_naive": None, "coverage_p10_p90": None,
                        "pinball": None}
            continue
        a, m, r, lo, hi = a[ok], m[ok], r[ok], lo[ok], hi[ok]
        err = np.abs(a - m)
        mae, mae_ref = float(err.mean()), float(np.abs(a - r).mean())
        level = float(np.abs(a).mean())
        nmae = mae / level if level > 0 else np.nan
        covered = (a >= lo) & (a <= hi)
        pin = float(np.mean([_pinball(a, lo, 0.1), _pinball(a, m, 0.5), _pinball(a, hi, 0.9)]))
        out[sid] = {
            "n": n, "mae": mae, "rmse": float(np.sqrt(np.mean((a - m) ** 2))),
            "nmae": _nan(nmae),
            "skill_vs_seasonal_naive": _nan(1 - mae / mae_ref) if mae_ref > 0 else None,
            "coverage_p10_p90": float(covered.mean()), "pinball": pin,
        }
        maes.append(mae)
        rmses.append(out[sid]["rmse"])
        cov_hits += int(covered.sum())
        cov_n += n
        if level > 0:
            nm.append(nmae)
            nm_ref.append(mae_ref / level)
            pin_n.append(pin / level)
    if cov_n == 0:
        out[ALL] = {"n": 0, "mae": None, "rmse": None, "nmae": None,
                    "skill_vs_seasonal_naive": None, "coverage_p10_p90": None, "pinball": None}
        return out
    mean_nm, mean_ref = (float(np.mean(nm)), float(np.mean(nm_ref))) if nm else (np.nan, np.nan)
    out[ALL] = {
        "n": cov_n, "mae": float(np.mean(maes)), "rmse": float(np.mean(rmses)),
        "nmae": _nan(mean_nm),
        "skill_vs_seasonal_naive": _nan(1 - mean_nm / mean_ref) if mean_ref > 0 else None,
        "coverage_p10_p90": cov_hits / cov_n,
        "pinball": _nan(float(np.mean(pin_n))) if pin_n else None,
    }
    return out
