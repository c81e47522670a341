"""The error reduction's bootstrap interval over test origins, checked by hand on tiny series."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ecodemo.energy import sampling
from ecodemo.energy.benefit import avoided, load_benefit_model
from ecodemo.energy.ranges import Span


def pair(model_sum, model_n, cf_sum, cf_n, weight=1.0, sid="s1") -> sampling.PairedErrors:
    return sampling.PairedErrors(sid, weight, np.array(model_sum, float), np.array(model_n, float),
                                 np.array(cf_sum, float), np.array(cf_n, float))


def test_every_resample_of_two_days_by_hand() -> None:
    # day 0: model |e| = 1, counterfactual 2 (reduction +1); day 1: model 3, cf 2 (-1).
    p = pair([1, 3], [1, 1], [2, 2], [1, 1])
    every = np.array(list(itertools.product(range(2), repeat=2)))   # 00, 01, 10, 11
    # reductions: 00 -> 2-1 = 1; 01, 10 -> 2-2 = 0; 11 -> 2-3 = -1; point (01) = 0
    assert sampling.reduction_on([p], every).tolist() == [1.0, 0.0, 0.0, -1.0]
    iv = sampling.reduction_interval([p], 1, idx=every, level=0.5)
    # quartiles of [-1, 0, 0, 1] (linear): positions 0.75 and 2.25 -> -0.25 and 0.25
    assert iv["point"] == 0.0
    assert iv["low"] == pytest.approx(-0.25) and iv["high"] == pytest.approx(0.25)
    assert iv["resamples"] == 4 and iv["origins"] == 2


def test_mae_is_pooled_over_points_not_averaged_over_days() -> None:
    # day 0: 2 points, |e| sum 2 (MAE 1); day 1: 1 point, |e| 4. Drawing day 0 twice and day 1
    # once would be (2+2+4)/(2+2+1) = 1.6, not the mean of daily MAEs (1+1+4)/3 = 2.
    p = pair([2, 4], [2, 1], [0, 0], [2, 1])
    assert sampling.reduction_on([p], np.array([[0, 0, 1]]))[0] == pytest.approx(-1.6)


def test_sensors_are_weighted_into_the_error_unit_and_share_the_days() -> None:
    kw = pair([1, 1], [1, 1], [3, 1], [1, 1], weight=0.001, sid="kw")      # kW -> MW
    mw = pair([1, 1], [1, 1], [1, 3], [1, 1], weight=1.0, sid="mw")
    # day 0 only: kW sensor reduces 2 kW = 0.002 MW, MW sensor 0 -> 0.002
    assert sampling.reduction_on([kw, mw], np.array([[0, 0]]))[0] == pytest.approx(0.002)
    iv = sampling.reduction_interval([kw, mw], 1)
    assert iv["point"] == pytest.approx(0.001 + 1.0)
    assert iv["low"] <= iv["point"] <= iv["high"]


def test_circular_blocks_are_consecutive_days() -> None:
    idx = sampling.block_indices(5, 2, 300, np.random.default_rng(1))
    assert idx.shape == (300, 5)
    for row in idx:
        for start in (0, 2):   # blocks [0:2], [2:4]; the last block is cut to one day
            assert row[start + 1] == (row[start] + 1) % 5
    assert set(np.unique(idx)) == set(range(5))      # circular: every day can be drawn


@pytest.mark.parametrize(("horizon_h", "days"), [(24, 1), (1, 1), (37, 2), (48, 2), (49, 3)])
def test_block_days_cover_overlapping_forecasts(horizon_h, days) -> None:
    assert sampling.block_days(horizon_h) == days


def test_fixed_seed_gives_the_same_interval() -> None:
    rng = np.random.default_rng(7)
    p = pair(rng.random(28) * 10, np.full(28, 24), rng.random(28) * 12, np.full(28, 24))
    a, b = sampling.reduction_interval([p], 1), sampling.reduction_interval([p], 1)
    assert a == b and a["resamples"] == sampling.RESAMPLES and a["low"] < a["point"] < a["high"]


def test_interval_widens_avoided_co2_by_hand() -> None:
    solar = load_benefit_model().kind("solar")
    point = avoided(solar, 0.001, 24)
    wide = avoided(solar, Span(0.0005, 0.001, 0.002), 24)
    assert wide.avoided_kgco2e == pytest.approx(point.avoided_kgco2e)
    # every factor is positive: the ends scale with the ends of the reduction
    assert wide.kgco2e_span.low == pytest.approx(point.kgco2e_span.low / 2)
    assert wide.kgco2e_span.high == pytest.approx(point.kgco2e_span.high * 2)
    # a reduction that may be negative gives a low end below zero (the model may do worse)
    neg = avoided(solar, Span(-0.001, 0.001, 0.002), 24)
    assert neg.kgco2e_span.low == pytest.approx(-point.kgco2e_span.high)


def test_live_reduction_resamples_issue_days_by_hand() -> None:
    """Live forecasts: the issue day is the unit. Day 1 (two targets): the model is 1 off,
    seasonal naive 2 (+1); day 2: the model 3 off, naive 2 (-1). Pooled: 2 - 5/3; the 95 %
    interval of the resamples (1 with p 1/4, 1/3, -1 with p 1/4) is [-1, 1]."""
    import pandas as pd

    from ecodemo.energy.improvement import live_reduction

    d1, d2 = pd.Timestamp("2021-03-01T06:00Z"), pd.Timestamp("2021-03-02T06:00Z")
    frame = pd.DataFrame({
        "kind": "bike", "model_id": "m", "model_name": "lgbm_small", "sensor_id": "s1",
        "unit": "bicycles/h", "issued_at": [d1, d1, d2],
        "ts": [d1 + pd.Timedelta(hours=1), d1 + pd.Timedelta(hours=2),
               d2 + pd.Timedelta(hours=1)],
        "actual": [10.0, 10.0, 10.0], "p50": [9.0, 11.0, 13.0], "naive": [12.0, 8.0, 12.0]})
    red = live_reduction(frame, "bike", "m", "bicycles/h")
    assert red is not None and red.error_reduction == pytest.approx(2 - 5 / 3)
    iv = red.interval
    assert iv is not None and (iv["origins"], iv["block_days"]) == (2, 1)
    # resamples: day 1 twice -> 2 - 1 = 1; both days -> 2 - 5/3; day 2 twice -> 2 - 3 = -1
    assert (iv["low"], iv["high"]) == pytest.approx((-1.0, 1.0))
    assert red.span().pair() == pytest.approx([-1.0, 1.0])
    one_day = live_reduction(frame[frame["issued_at"] == d1], "bike", "m", "bicycles/h")
    assert one_day is not None and one_day.interval is None
    assert any("issued on one day" in n for n in one_day.notes)
