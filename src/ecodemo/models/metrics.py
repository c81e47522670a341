"""Accuracy of [origin, lead, sensor] forecasts against actuals.

Per sensor, in the sensor's unit: MAE, RMSE, nMAE = MAE / mean(|actual|) over the evaluated
points, skill = 1 - MAE_model / MAE_seasonal_naive (on the same points), p10-p90 coverage (share
of actuals inside [p10, p90]; 0.8 is ideal), pinball loss (mean over q = 0.1, 0.5, 0.9).

Aggregate ``'__all__'`` (sensors of one kind may have different units and sizes, so every
sensor counts equally): MAE and RMSE are means of the per-sensor values; nMAE is the mean of
per-sensor nMAEs; skill = 1 - mean nMAE_model / mean nMAE_seasonal_naive; coverage is pooled
over all points; pinball is the mean of per-sensor pinball / mean(|actual|).

Solar nights are scored apart (``night`` mask): a night point's band is the sensor's night
level (zero width when its nights read a constant 0), so counting it would inflate the
coverage of the band that matters; ``coverage_p10_p90`` counts the other points and
``coverage_night`` the night ones. Point metrics (MAE, nMAE, skill) count every point.
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


def _empty(n: int = 0) -> dict[str, Any]:
    return {"n": n, "mae": None, "rmse": None, "nmae": None, "skill_vs_seasonal_naive": None,
            "coverage_p10_p90": None, "coverage_night": None, "pinball": None}


def score(actual: np.ndarray, p10: np.ndarray, p50: np.ndarray, p90: np.ndarray,
          reference: np.ndarray, sensor_ids: list[str],
          night: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """Metrics per sensor id and ``'__all__'``; ``reference`` is the seasonal-naive p50;
    ``night``: [origin, lead, sensor] True at solar night (None: no night)."""
    out: dict[str, dict[str, Any]] = {}
    nm, nm_ref, pin_n, cov_hits, cov_n, night_hits, night_n = [], [], [], 0, 0, 0, 0
    if night is None:
        night = np.zeros(actual.shape, dtype=bool)
    maes, rmses = [], []
    for j, sid in enumerate(sensor_ids):
        a, m, r = actual[..., j].ravel(), p50[..., j].ravel(), reference[..., j].ravel()
        lo, hi, dark = p10[..., j].ravel(), p90[..., j].ravel(), night[..., j].ravel()
        ok = np.isfinite(a) & np.isfinite(m) & np.isfinite(r)
        n = int(ok.sum())
        if n == 0:
            out[sid] = _empty()
            continue
        a, m, r, lo, hi, dark = a[ok], m[ok], r[ok], lo[ok], hi[ok], dark[ok]
        err = np.abs(a - m)
        mae, mae_ref = float(err.mean()), float(np.abs(a - r).mean())
        level = float(np.abs(a).mean())
        nmae = mae / level if level > 0 else np.nan
        covered = (a >= lo) & (a <= hi)
        pin = float(np.mean([_pinball(a, lo, 0.1), _pinball(a, m, 0.5), _pinball(a, hi, 0.9)]))
        day_n, dark_n = int((~dark).sum()), int(dark.sum())
        out[sid] = {
            "n": n, "mae": mae, "rmse": float(np.sqrt(np.mean((a - m) ** 2))),
            "nmae": _nan(nmae),
            "skill_vs_seasonal_naive": _nan(1 - mae / mae_ref) if mae_ref > 0 else None,
            "coverage_p10_p90": float(covered[~dark].mean()) if day_n else None,
            "coverage_night": float(covered[dark].mean()) if dark_n else None,
            "pinball": pin,
        }
        maes.append(mae)
        rmses.append(out[sid]["rmse"])
        cov_hits += int(covered[~dark].sum())
        cov_n += day_n
        night_hits += int(covered[dark].sum())
        night_n += dark_n
        if level > 0:
            nm.append(nmae)
            nm_ref.append(mae_ref / level)
            pin_n.append(pin / level)
    if cov_n + night_n == 0:
        out[ALL] = _empty()
        return out
    mean_nm, mean_ref = (float(np.mean(nm)), float(np.mean(nm_ref))) if nm else (np.nan, np.nan)
    out[ALL] = {
        "n": cov_n + night_n, "mae": float(np.mean(maes)), "rmse": float(np.mean(rmses)),
        "nmae": _nan(mean_nm),
        "skill_vs_seasonal_naive": _nan(1 - mean_nm / mean_ref) if mean_ref > 0 else None,
        "coverage_p10_p90": cov_hits / cov_n if cov_n else None,
        "coverage_night": night_hits / night_n if night_n else None,
        "pinball": _nan(float(np.mean(pin_n))) if pin_n else None,
    }
    return out


def lead_group_label(lo_h: float, hi_h: float) -> str:
    return f"{lo_h:g}-{hi_h:g}h"


def coverage_by_lead(actual: np.ndarray, p10: np.ndarray, p90: np.ndarray, step_h: float,
                     groups_h: tuple[float, ...],
                     night: np.ndarray | None = None) -> dict[str, float | None]:
    """Pooled p10-p90 coverage [origin, lead, sensor] per lead group (leads in (lo, hi] hours,
    keyed ``'lo-hih'``), night points left out as in :func:`score`."""
    lead_h = np.arange(1, actual.shape[1] + 1) * step_h
    ok = np.isfinite(actual) & np.isfinite(p10) & np.isfinite(p90)
    if night is not None:
        ok &= ~night
    covered = (actual >= p10) & (actual <= p90)
    out: dict[str, float | None] = {}
    lo = 0.0
    for hi in groups_h:
        if lo >= lead_h[-1] - 1e-9:
            break
        in_g = ok & ((lead_h > lo + 1e-9) & (lead_h <= hi + 1e-9))[None, :, None]
        n = int(in_g.sum())
        out[lead_group_label(lo, hi)] = float(covered[in_g].mean()) if n else None
        lo = hi
    return out


def per_origin_errors(actual: np.ndarray, p50: np.ndarray, reference: np.ndarray,
                      sensor_ids: list[str]) -> dict[str, dict[str, list[float] | list[int]]]:
    """Per sensor, the sum of absolute errors and the count of scored points at each origin,
    on the points :func:`score` counts (actual, p50 and reference finite), so the MAE over
    any set of origins is sum / count. The balance resamples test origins (days) with these
    to give the error reduction an interval (:mod:`ecodemo.energy.sampling`)."""
    out: dict[str, dict[str, list[float] | list[int]]] = {}
    for j, sid in enumerate(sensor_ids):
        a, m, r = actual[..., j], p50[..., j], reference[..., j]
        ok = np.isfinite(a) & np.isfinite(m) & np.isfinite(r)
        err = np.where(ok, np.abs(np.where(ok, a - m, 0.0)), 0.0)
        out[sid] = {"abs_error_sum": [float(x) for x in err.sum(axis=1)],
                    "n": [int(x) for x in ok.sum(axis=1)]}
    return out
