"""``evaluate``: live accuracy of past forecasts as issued, then the balance per kind."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ecodemo.energy.benefit import load_benefit_model
from ecodemo.energy.stages import evaluate
from ecodemo.store.ingest import ingest_csv
from tests.conftest import SNAPSHOT

BIKE_MODEL = "bike-lgbm_small-v1"


def _model(conn, model_id, kind, name="lgbm_small", status="promoted"):
    conn.execute("INSERT INTO models (model_id, kind, name, version, status) "
                 "VALUES (%s, %s, %s, 1, %s)", (model_id, kind, name, status))


def _run(conn, stage, started_at, kwh, kg, model_id=None, kind=None):
    conn.execute(
        """INSERT INTO compute_runs (run_id, stage, model_id, sensor_kind, started_at,
               duration_s, energy_kwh, emissions_kg, measurement_method)
           VALUES (%s, %s, %s, %s, %s, 1, %s, %s, 'estimated: test row')""",
        (str(uuid.uuid4()), stage, model_id, kind, started_at, kwh, kg))


@pytest.fixture()
def bike_data(conn, snapshot_sites):
    """Real Paris bike counts (bundled snapshot)."""
    ingest_csv(conn, SNAPSHOT / "transport_bike.csv.gz")
    sensor = "paris-bike-100007049-101007049"
    rows = conn.execute("SELECT ts, value FROM readings WHERE sensor_id = %s ORDER BY ts",
                        (sensor,)).fetchall()
    series = pd.Series([v for _t, v in rows], index=pd.DatetimeIndex([t for t, _v in rows]))
    return sensor, series


def test_evaluate_live_forecasts_against_actuals(settings, conn, bike_data) -> None:
    sensor, actual = bike_data
    _model(conn, BIKE_MODEL, "bike")
    issued = datetime(2021, 3, 1, 0, 0, tzinfo=UTC)
    targets = [issued + timedelta(hours=h) for h in range(1, 49)]
    truth = actual.reindex(pd.DatetimeIndex(targets))
    naive = actual.reindex(pd.DatetimeIndex([t - timedelta(hours=168) for t in targets]))
    assert truth.notna().all() and naive.notna().all()
    # A forecast halfway between the seasonal-naive value and the truth: better than naive.
    p50 = 0.5 * naive.to_numpy() + 0.5 * truth.to_numpy()
    rows = [(sensor, BIKE_MODEL, issued, t, float(h + 1), p - 20, p, p + 20)
            for h, (t, p) in enumerate(zip(targets, p50, strict=True))]
    # Not evaluated: issued after its target, and a target without a reading.
    rows.append((sensor, BIKE_MODEL, issued + timedelta(hours=5), issued + timedelta(hours=2),
                 -3.0, 0, 0, 0))
    rows.append((sensor, BIKE_MODEL, issued, datetime(2030, 1, 1, tzinfo=UTC), 24.0, 1, 1, 1))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO forecasts (sensor_id, model_id, issued_at, ts, horizon_h, "
                        "p10, p50, p90) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", rows)
    _run(conn, "train", issued - timedelta(days=1), 0.01, 0.0003, BIKE_MODEL, "bike")
    _run(conn, "predict", issued, 0.001, 0.00003, BIKE_MODEL, "bike")

    start, end = issued, issued + timedelta(hours=49)
    out = evaluate(settings, start, end)

    got = conn.execute("""SELECT horizon_h, n, mae, rmse, nmae, skill_vs_seasonal_naive,
                              coverage_p10_p90, pinball, details
                          FROM evaluations WHERE source = 'live' AND sensor_id = %s
                          ORDER BY horizon_h""", (sensor,)).fetchall()
    assert len(got) == 48 and all(r[1] == 1 for r in got)
    a, p = truth.to_numpy(), p50
    for h, _n, mae, rmse, nmae, skill, cov, pin, details in got:
        i = int(h) - 1
        naive_err = abs(a[i] - naive.iloc[i])
        if naive_err > 0:
            assert skill == pytest.approx(1 - abs(a[i] - p[i]) / naive_err)
        assert mae == pytest.approx(abs(a[i] - p[i]))
        assert rmse == pytest.approx(abs(a[i] - p[i]))
        if a[i] != 0:
            assert nmae == pytest.approx(abs(a[i] - p[i]) / abs(a[i]))
        assert cov == (1.0 if abs(a[i] - p[i]) <= 20 else 0.0)
        assert details["mae_seasonal_naive"] == pytest.approx(abs(a[i] - naive.iloc[i]))
        assert pin is not None
    # pooled over horizons, the '__all__' rows exist too, one per horizon
    n_all = conn.execute("SELECT count(*) FROM evaluations WHERE sensor_id = '__all__' "
                         "AND source = 'live'").fetchone()[0]
    assert n_all == 48

    # the balance used the live error reduction
    bal = [b for b in out["balances"] if b["kind"] == "bike"]
    assert len(bal) == 1 and "from live accuracy" in bal[0]["method"]
    mae_model = np.abs(a - p).mean()
    mae_naive = np.abs(a - naive.to_numpy()).mean()
    row = conn.execute("SELECT avoided_kwh, assumptions, compute_kwh, method FROM balances "
                       "WHERE kind = 'bike'").fetchone()
    red = row[1]["error_reduction_source"]
    assert red["source"] == "live"
    assert red["error_reduction"] == pytest.approx(mae_naive - mae_model)
    # one issue day: nothing to resample, the reduction stays a point and says so
    assert red["interval"] is None and any("issued on one day" in n for n in red["notes"])
    f = row[1]["kind_model"]["kwh_per_error_unit_hour"]
    assert row[0] == pytest.approx((mae_naive - mae_model) * 49 * f)
    # no ingest runs in the period; one inference run, counted at the hourly cadence (x 49)
    assert row[2] == pytest.approx(0.01 * 49 / 168 + 0.001 * 49)
    # the evaluate stage measured itself
    assert conn.execute("SELECT count(*) FROM compute_runs WHERE stage = 'evaluate' "
                        "AND run_id = %s", (out["evaluate_run_id"],)).fetchone()[0] == 1


def test_backtest_fallback_and_unmeasured_run_stays_null(settings, conn, snapshot_sites) -> None:
    model_id = "solar-lgbm_small-v3"
    _model(conn, model_id, "solar")
    sensor = conn.execute("SELECT sensor_id FROM sensors WHERE kind = 'solar'").fetchone()[0]
    p0, p1 = datetime(2013, 1, 1, tzinfo=UTC), datetime(2013, 12, 1, tzinfo=UTC)
    for name, mid, maes in (("lgbm_small", model_id, (2.0, 3.0)),
                            ("seasonal_naive", None, (4.0, 5.5))):
        for h, mae in zip((1.0, 24.0), maes, strict=True):
            conn.execute(
                """INSERT INTO evaluations (source, kind, model_name, model_id, sensor_id,
                       horizon_h, period_start, period_end, n, mae)
                   VALUES ('backtest', 'solar', %s, %s, %s, %s, %s, %s, 100, %s)""",
                (name, mid, sensor, h, p0, p1, mae))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=12)
    end = start + timedelta(hours=24)
    _run(conn, "train", start - timedelta(hours=1), 0.02, 0.0006, model_id, "solar")
    _run(conn, "predict", start + timedelta(hours=1), None, None, model_id, "solar")  # failed

    out = evaluate(settings, start, end)
    assert out["live_evaluation_rows"] == 0
    row = conn.execute(
        "SELECT avoided_kwh, avoided_kgco2e, predict_kwh, train_kwh, compute_kwh, "
        "compute_kgco2e, net_kgco2e, benefit_cost_ratio, payback_hours, breakeven, method, "
        "assumptions FROM balances WHERE kind = 'solar'").fetchone()
    avoided_kwh, avoided_kg, predict, train, compute, compute_kg, net, ratio, payback, be, \
        method, assumptions = row
    # mean reduction over horizons: ((4 - 2) + (5.5 - 3)) / 2 = 2.25 MW, held 24 h, default
    # share 0.3 and 1000 kWh/MWh
    share = assumptions["kind_model"]["energy_factors"]["share_of_error_balanced"]["value"]
    assert avoided_kwh == pytest.approx(2.25 * 24 * 1000 * share)
    assert avoided_kg == pytest.approx(avoided_kwh * assumptions["kind_model"]["net_g_per_kwh"]
                                       / 1000)
    assert predict is None and compute is None and compute_kg is None   # NULL, not 0
    assert net is None and ratio is None and payback is None
    assert train == pytest.approx(0.02 * 24 / 168)
    assert method.startswith("INCOMPLETE") and "backtest" in method
    assert be["breakeven_value"] is None and "not measured" in be["why_none"]
    assert assumptions["unmeasured_runs"] == 1
    assert assumptions["error_reduction_source"]["source"] == "backtest"
    # rows without errors per test origin (written before the ladder stored them): a point,
    # said, never a made-up interval
    assert assumptions["error_reduction_interval"] is None
    assert any("has no errors per test origin" in n
               for n in assumptions["error_reduction_source"]["notes"])


def test_headline_is_against_the_best_no_ai_forecast(settings, conn, snapshot_sites) -> None:
    """The balance's counterfactual is the best no-AI rung of the latest backtest (named, with
    why); seasonal naive stays as a secondary line; a no-AI model adds nothing."""
    ml_id, noai_id = "solar-lgbm_small-v3", "wind-persistence-v1"
    _model(conn, ml_id, "solar")
    _model(conn, noai_id, "wind", name="persistence")
    p0, p1 = datetime(2013, 1, 1, tzinfo=UTC), datetime(2013, 12, 1, tzinfo=UTC)
    for kind in ("solar", "wind"):
        sensor = conn.execute("SELECT sensor_id FROM sensors WHERE kind = %s ORDER BY 1",
                              (kind,)).fetchone()[0]
        # (name, model_id, MAE at 1 h and 24 h in MW, nMAE): persistence is the best no-AI rung
        rungs = [("seasonal_naive", None, (4.0, 5.5), 0.40),
                 ("climatology", None, (3.5, 4.5), 0.35),
                 ("persistence", noai_id if kind == "wind" else None, (3.0, 4.0), 0.30)]
        if kind == "solar":
            rungs.append(("lgbm_small", ml_id, (2.0, 3.0), 0.20))
        for name, mid, maes, nmae in rungs:
            for h, mae in zip((1.0, 24.0), maes, strict=True):
                for sid in (sensor, "__all__"):
                    conn.execute(
                        """INSERT INTO evaluations (source, kind, model_name, model_id,
                               sensor_id, horizon_h, period_start, period_end, n, mae, nmae)
                           VALUES ('backtest', %s, %s, %s, %s, %s, %s, %s, 100, %s, %s)""",
                        (kind, name, mid, sid, h, p0, p1, mae, nmae))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=12)
    end = start + timedelta(hours=24)
    _run(conn, "train", start - timedelta(hours=1), 0.02, 0.0006, ml_id, "solar")
    _run(conn, "predict", start + timedelta(hours=1), 0.001, 0.00003, ml_id, "solar")

    out = evaluate(settings, start, end)
    by_kind = {b["kind"]: b for b in out["balances"]}
    solar, wind = by_kind["solar"], by_kind["wind"]
    share = 0.3  # the default share_of_error_balanced for solar
    # against persistence (the best no-AI rung: lowest nMAE): ((3 - 2) + (4 - 3)) / 2 = 1 MW;
    # against seasonal naive: ((4 - 2) + (5.5 - 3)) / 2 = 2.25 MW; both held 24 h
    cf = solar["counterfactual"]
    assert cf["name"] == "persistence" and "best_no_ai" in cf["declared"]
    assert "persistence, the lowest nMAE" in cf["why"] and cf["source"] == "backtest"
    assert "no separate selection window" in cf["protocol"]
    assert solar["avoided_kwh"] == pytest.approx(1.0 * 24 * 1000 * share)
    assert solar["avoided_kwh_range"] == pytest.approx([24 * 1000 * 0.1, 24 * 1000 * 0.6])
    assert solar["energy_effect"] == "shifted" and solar["net_kwh"] is None
    lo, hi = solar["avoided_kgco2e_range"]
    assert lo < solar["avoided_kgco2e"] < hi
    lo, hi = solar["net_kgco2e_range"]
    assert lo < solar["net_kgco2e"] < hi
    naive = next(x for x in solar["secondary_counterfactuals"]
                 if x["counterfactual"] == "seasonal_naive")
    assert naive["avoided_kwh"] == pytest.approx(2.25 * 24 * 1000 * share)
    inc = solar["machine_learning_increment"]
    assert inc["baseline"] == "persistence" and inc["is_machine_learning"] is True
    assert inc["error_reduction_vs_best"] == pytest.approx(1.0)
    assert inc["share"] == pytest.approx(1.0 / 2.25)
    assert inc["avoided_kwh"] == pytest.approx(1.0 * 24 * 1000 * share)
    # the increment's net subtracts the same whole cost as the headline net (compute CO2 and
    # the machine's embodied share): spent = avoided - net on both
    spent = solar["avoided_kgco2e"] - solar["net_kgco2e"]
    embodied = spent - solar["compute_kgco2e"]
    assert embodied > 0
    assert abs(inc["net_kgco2e"] - (inc["avoided_kgco2e"] - spent)) < 0.01 * embodied
    # the wind model is persistence itself: against itself it avoids nothing, and only the
    # secondary line says what it gains over seasonal naive
    assert wind["counterfactual"]["name"] == "persistence" and wind["avoided_kwh"] == 0.0
    assert wind["net_kgco2e"] is None or wind["net_kgco2e"] <= 0
    assert next(x for x in wind["secondary_counterfactuals"]
                if x["counterfactual"] == "seasonal_naive")["avoided_kwh"] > 0
    winc = wind["machine_learning_increment"]
    assert winc["is_machine_learning"] is False and winc["avoided_kwh"] == 0.0
    stored = conn.execute("SELECT assumptions->'machine_learning_increment'->>'baseline' "
                          "FROM balances WHERE kind = 'solar'").fetchone()[0]
    assert stored == "persistence"


def test_declared_series_counterfactual(settings, conn, snapshot_sites, tmp_path) -> None:
    """An authority declares its operator's own forecast (a series in the store) for solar:
    the balance is against it, named, with the operator's MAE over the backtest period."""
    model_id = "solar-lgbm_small-v3"
    _model(conn, model_id, "solar")
    sensor, unit = conn.execute("SELECT sensor_id, unit FROM sensors WHERE kind = 'solar' "
                                "ORDER BY 1").fetchone()
    p0 = datetime(2013, 6, 1, tzinfo=UTC)
    p1 = p0 + timedelta(hours=4)
    for name, mid, mae in (("lgbm_small", model_id, 1.5), ("seasonal_naive", None, 4.0)):
        for h in (1.0, 24.0):
            conn.execute(
                """INSERT INTO evaluations (source, kind, model_name, model_id, sensor_id,
                       horizon_h, period_start, period_end, n, mae)
                   VALUES ('backtest', 'solar', %s, %s, %s, %s, %s, %s, 10, %s)""",
                (name, mid, sensor, h, p0, p1, mae))
    # the actual readings, and the operator's forecast 2 units off at every hour
    for i in range(4):
        ts = p0 + timedelta(hours=i)
        conn.execute("INSERT INTO readings (sensor_id, ts, value) VALUES (%s, %s, %s) "
                     "ON CONFLICT DO NOTHING", (sensor, ts, 10.0 + i))
        conn.execute("INSERT INTO readings (sensor_id, ts, value) VALUES (%s, %s, %s)",
                     ("operator-forecast", ts, 12.0 + i))
    path = tmp_path / "benefit.yaml"
    path.write_text(f"kinds:\n  solar:\n    counterfactual:\n      series: {{{sensor}: "
                    f"operator-forecast}}\n      why: the TSO's day-ahead forecast\n",
                    encoding="utf-8")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=12)
    end = start + timedelta(hours=24)
    _run(conn, "train", start - timedelta(hours=1), 0.02, 0.0006, model_id, "solar")
    out = evaluate(settings, start, end, benefit_model_path=path)
    solar = next(b for b in out["balances"] if b["kind"] == "solar")
    cf = solar["counterfactual"]
    assert cf["name"] == f"series: {sensor} <- operator-forecast"
    assert cf["declared"] == "declared for solar in the benefit model"
    assert cf["why"] == "the TSO's day-ahead forecast"
    from ecodemo.units import factor
    assert cf["error_reduction"] == pytest.approx((2.0 - 1.5) * factor(unit, "MW"))
    assert solar["avoided_kwh"] == pytest.approx(cf["error_reduction"] * 24 * 1000 * 0.3)


def test_balance_counts_the_evaluation_run_that_feeds_it(settings, conn, snapshot_sites) -> None:
    """The accuracy step is recorded before the balance reads its period's evaluate runs, so
    the balance's evaluation component holds it (it was 0 when the one run closed after)."""
    model_id = "solar-lgbm_small-v3"
    _model(conn, model_id, "solar")
    sensor = conn.execute("SELECT sensor_id FROM sensors WHERE kind = 'solar'").fetchone()[0]
    p0, p1 = datetime(2013, 1, 1, tzinfo=UTC), datetime(2013, 12, 1, tzinfo=UTC)
    for name, mid, mae in (("lgbm_small", model_id, 2.0), ("seasonal_naive", None, 4.0)):
        conn.execute(
            """INSERT INTO evaluations (source, kind, model_name, model_id, sensor_id,
                   horizon_h, period_start, period_end, n, mae)
               VALUES ('backtest', 'solar', %s, %s, %s, 1, %s, %s, 100, %s)""",
            (name, mid, sensor, p0, p1, mae))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=12)
    end = start + timedelta(hours=24)
    _run(conn, "train", start - timedelta(hours=1), 0.02, 0.0006, model_id, "solar")
    _run(conn, "predict", start + timedelta(hours=1), 0.001, 0.00003, model_id, "solar")

    out = evaluate(settings, start, end)
    runs = dict(conn.execute(
        "SELECT run_id::text, energy_kwh FROM compute_runs WHERE stage = 'evaluate'").fetchall())
    assert set(runs) == {out["evaluate_run_id"], out["balance_run_id"]}
    accuracy_kwh = runs[out["evaluate_run_id"]]
    assert accuracy_kwh is not None and accuracy_kwh > 0   # CodeCarbon measured it
    acc = conn.execute("SELECT assumptions->'components'->'accounting' FROM balances "
                       "WHERE kind = 'solar'").fetchone()[0]
    # the accuracy run, not the balance run still open when the balance was computed
    assert acc["n_runs"] == 1 and acc["n_unmeasured"] == 0
    # split evenly between the kinds the benefit model covers
    model = load_benefit_model(settings.benefit_model_path)
    n_kinds = len([k for (k,) in conn.execute("SELECT DISTINCT kind FROM sensors")
                   if k in model.kinds])
    assert acc["kwh"] == pytest.approx(accuracy_kwh / n_kinds)


def test_error_reduction_interval_from_the_test_origins(settings, conn, snapshot_sites) -> None:
    """The ladder's errors per test origin give the error reduction a bootstrap interval, and
    the avoided CO2 and net ranges widen with it. Two days: the model beats persistence by
    1 unit on the first and loses by 1 on the second, so resamples give 1, 0 or -1 (x the unit
    factor) with probabilities 1/4, 1/2, 1/4: the 95 % interval is [-1, 1], the point 0."""
    import json

    from ecodemo.units import factor

    model_id = "solar-lgbm_small-v3"
    _model(conn, model_id, "solar")
    sensor, unit = conn.execute("SELECT sensor_id, unit FROM sensors WHERE kind = 'solar' "
                                "ORDER BY 1").fetchone()
    to_mw = factor(unit, "MW")
    p0, p1 = datetime(2013, 6, 1, tzinfo=UTC), datetime(2013, 6, 3, tzinfo=UTC)
    origins = [p0.isoformat(), (p0 + timedelta(days=1)).isoformat()]
    # (name, model id, |error| sums per origin over 10 points each, nMAE)
    rungs = [("lgbm_small", model_id, [10.0, 30.0], 0.2),
             ("persistence", None, [20.0, 20.0], 0.3),
             ("seasonal_naive", None, [40.0, 40.0], 0.4)]
    for name, mid, sums, nmae in rungs:
        per_origin = {"per_origin": {"origins": origins, "abs_error_sum": sums, "n": [10, 10]}}
        for sid, det in ((sensor, per_origin), ("__all__", {})):
            conn.execute(
                """INSERT INTO evaluations (source, kind, model_name, model_id, sensor_id,
                       horizon_h, period_start, period_end, n, mae, nmae, details)
                   VALUES ('backtest', 'solar', %s, %s, %s, 24, %s, %s, 20, %s, %s, %s)""",
                (name, mid, sid, p0, p1, sum(sums) / 20, nmae, json.dumps(det)))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=12)
    end = start + timedelta(hours=24)
    _run(conn, "train", start - timedelta(hours=1), 0.02, 0.0006, model_id, "solar")
    solar = next(b for b in evaluate(settings, start, end)["balances"] if b["kind"] == "solar")
    cf = solar["counterfactual"]
    assert cf["name"] == "persistence" and cf["error_reduction"] == pytest.approx(0.0)
    assert cf["error_reduction_range"] == pytest.approx([-1.0 * to_mw, 1.0 * to_mw])
    # a point reduction of 0 avoids nothing; its interval spans both signs
    assert solar["avoided_kgco2e"] == pytest.approx(0.0)
    lo, hi = solar["avoided_kgco2e_range"]
    assert lo < 0 < hi and lo == pytest.approx(-hi, rel=0.5)
    assert solar["net_kgco2e_range"][1] > 0 > solar["net_kgco2e_range"][0]
    stored = conn.execute("SELECT assumptions->'error_reduction_interval' FROM balances "
                          "WHERE kind = 'solar'").fetchone()[0]
    assert (stored["origins"], stored["block_days"], stored["resamples"]) == (2, 1, 2000)
    # secondary line against seasonal naive: the model is better on both days (3 and 1):
    # resamples give 3, 2 or 1 -> [1, 3], point 2
    naive = next(x for x in solar["secondary_counterfactuals"]
                 if x["counterfactual"] == "seasonal_naive")
    assert naive["error_reduction_range"] == pytest.approx([1.0 * to_mw, 3.0 * to_mw])


def test_naive_value_found_whole_seasons_before_a_long_lead(conn, bike_data) -> None:
    """A forecast issued 200 h ahead: its seasonal-naive value is two weeks (336 h) before the
    target, further back than the span of the targets (the readings are read only within a
    bounded range, so the bound must reach it)."""
    from ecodemo.energy.accuracy import forecasts_with_actuals

    sensor, actual = bike_data
    _model(conn, BIKE_MODEL, "bike")
    target = datetime(2021, 3, 20, 12, tzinfo=UTC)
    conn.execute("INSERT INTO forecasts (sensor_id, model_id, issued_at, ts, horizon_h, p10, "
                 "p50, p90) VALUES (%s, %s, %s, %s, 200, 1, 2, 3)",
                 (sensor, BIKE_MODEL, target - timedelta(hours=200), target))
    frame = forecasts_with_actuals(conn)
    assert len(frame) == 1
    assert frame["actual"].iloc[0] == actual[target]
    assert frame["naive"].iloc[0] == actual[target - timedelta(hours=336)]
