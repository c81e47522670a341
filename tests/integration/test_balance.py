"""Balance arithmetic on hand-checked numbers: the whole life of the service, ranges propagated
from measurement bands and assumption ranges, and NULL (unmeasured) propagation."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ecodemo.energy import balance, benefit, gather
from ecodemo.errors import ConfigError

T0 = datetime(2024, 5, 1, tzinfo=UTC)
T1 = T0 + timedelta(hours=24)
H = timedelta(hours=1)
V1, V2 = "solar-lgbm_small-v1", "solar-lgbm_small-v2"
EST, HW = "estimated: CPU: estimated from load x TDP", "measured: CPU: RAPL counters"

OVERRIDE = """
accounting:
  training_service_life_h: {value: 168, unit: h, source: test, low: 84, high: 168,
                            range_source: test range}
kinds:
  solar:
    energy_factors:
      share_of_error_balanced: {value: 0.5, low: 0.25, high: 1.0, unit: "1",
                                source: test assumption, range_source: test range}
    emission_terms:
      reserve_g_per_kwh: {value: 400, low: 300, high: 500, unit: gCO2e/kWh,
                          source: test assumption, range_source: test range}
      scheduled_g_per_kwh: {value: 40, low: 20, high: 60, sign: -1, unit: gCO2e/kWh,
                            source: test assumption, range_source: test range}
"""


def run(conn, stage, started_at, kwh, *, model_id=None, kind=None, grid_kg=None, method=EST,
        purpose=None):
    """A run of ``kwh`` kWh at 30 gCO2e/kWh (CodeCarbon's figure); None = not measured."""
    conn.execute(
        """INSERT INTO compute_runs (run_id, stage, model_id, sensor_kind, started_at,
               duration_s, energy_kwh, emissions_kg, grid_emissions_kg, measurement_method,
               details)
           VALUES (%s, %s, %s, %s, %s, 1.0, %s, %s, %s, %s, %s::jsonb)""",
        (str(uuid.uuid4()), stage, model_id, kind, started_at, kwh,
         None if kwh is None else kwh * 0.03, grid_kg, method,
         json.dumps({"purpose": purpose} if purpose else {})))


def reading(conn, sensor_id, ts, ingested_at):
    conn.execute("INSERT INTO readings (sensor_id, ts, value, ingested_at) VALUES (%s,%s,1,%s)",
                 (sensor_id, ts, ingested_at))


@pytest.fixture()
def model(tmp_path: Path) -> benefit.BenefitModel:
    path = tmp_path / "benefit.yaml"
    path.write_text(OVERRIDE, encoding="utf-8")
    return benefit.load_benefit_model(path)


@pytest.fixture()
def runs(conn, snapshot_sites):
    for mid, version, status in ((V1, 1, "retired"), (V2, 2, "promoted")):
        conn.execute("INSERT INTO models (model_id, kind, name, version, status) "
                     "VALUES (%s, 'solar', 'lgbm_small', %s, %s)", (mid, version, status))
    for decided in (T0 - 200 * H, T0 - 30 * H):      # the previous ladder, then the latest
        conn.execute("INSERT INTO model_choices (kind, decided_at, chosen_name, model_id, "
                     "tolerance, reason) VALUES ('solar', %s, 'lgbm_small', %s, 0.02, 'test')",
                     (decided, V1))
    ladder = "ladder backtest"
    # the latest ladder: the chosen rung's fit (linked to v1), a rung not chosen, the scoring
    run(conn, "train", T0 - 32 * H, 0.2, model_id=V1, kind="solar", purpose=ladder)
    run(conn, "train", T0 - 32 * H, 0.1, kind="solar", purpose=ladder)
    run(conn, "predict", T0 - 31 * H, 0.05, kind="solar", purpose=ladder)
    run(conn, "backtest", T0 - 30.5 * H, 0.05, kind="solar")
    run(conn, "train", T0 - 250 * H, 9.0, kind="solar", purpose=ladder)   # the previous ladder
    # the version in service, trained on all data, measured by hardware counters
    run(conn, "train", T0 - 24 * H, 0.7, model_id=V2, kind="solar", method=HW)
    # inference in the period by both versions; the first has a grid-intensity figure
    run(conn, "predict", T0 + 6 * H, 0.05, model_id=V1, kind="solar", grid_kg=0.001)
    run(conn, "predict", T0 + 18 * H, 0.05, model_id=V2, kind="solar")
    run(conn, "predict", T0 + 5 * H, 9.0, kind="solar", purpose=ladder)    # no choice yet
    run(conn, "predict", T0 + 5 * H, 9.0, model_id="wind-x", kind="wind")  # other service
    run(conn, "predict", T1 + H, 9.0, model_id=V2, kind="solar")            # after the period
    run(conn, "ingest", T0 + 3 * H, 1.0)                    # all kinds: x share
    run(conn, "ingest", T0 + 4 * H, 0.2, kind="solar")      # this kind: fully
    run(conn, "ingest", T0 + 4 * H, 9.0, kind="bike")       # other kind
    run(conn, "evaluate", T0 + 7 * H, 0.1)                  # accounting: split between 2 kinds
    # rows ingested in the period: 1 solar, 3 bike -> solar share 0.25
    solar = conn.execute("SELECT sensor_id FROM sensors WHERE kind='solar' LIMIT 1").fetchone()[0]
    bike = conn.execute("SELECT sensor_id FROM sensors WHERE kind='bike' LIMIT 1").fetchone()[0]
    reading(conn, solar, T0, T0 + 3 * H)
    for i in range(3):
        reading(conn, bike, T0 + i * H, T0 + 3 * H)


def test_override_is_deep_merged(model) -> None:
    solar = model.kind("solar")
    assert solar.energy_factors["share_of_error_balanced"].value == 0.5
    assert solar.energy_factors["kwh_per_mwh"].value == 1000      # untouched default kept
    assert solar.net_g_per_kwh() == 400 - 40
    assert solar.energy_effect == "shifted" and model.kind("bike").energy_effect == "saved"
    assert model.kind("bike").key == "share_acted_on"


def test_bad_override_is_one_config_error(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kinds:\n  solar:\n    key: nope\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="key 'nope'"):
        benefit.load_benefit_model(path)
    # a value moved outside its inherited range must come with its own range
    path.write_text("kinds:\n  bike:\n    energy_factors:\n      share_acted_on: {value: 0.9}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"share_acted_on.*outside its range"):
        benefit.load_benefit_model(path)
    # a declared counterfactual replaces the default whole, and needs a why
    path.write_text("kinds:\n  wind:\n    counterfactual: {series: {a: b}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="why"):
        benefit.load_benefit_model(path)


def test_whole_life_and_ranges_hand_checked(conn, runs, model) -> None:
    km = model.kind("solar")
    parts = gather.gather_components(conn, "solar", V1, T0, T1,
                                     model.accounting.training_service_life_h, n_kinds=2,
                                     band=lambda m: model.accounting.band(m)[0])
    sel, train, pred, ing, acc = (parts[k] for k in ("selection", "train", "predict", "ingest",
                                                     "accounting"))
    # By hand. Bands: estimated +/-40 %, hardware counters +/-10 %. Amortisation factor:
    # 24 h / 168 h central, 24 h / 84 h at the high end (shortest service life).
    f, f_hi = 24 / 168, 24 / 84
    # selection: the latest ladder only (0.2 + 0.1 + 0.05 + 0.05 kWh, estimated), the rung not
    # chosen included; the previous ladder and a ladder with no choice recorded yet excluded
    assert sel.n_runs == 4
    # run hours (the embodied share's base): 4 runs of 1 s, amortised like the energy
    assert sel.hours_span.pair() == pytest.approx([4 / 3600 * 24 / 168, 4 / 3600 * f_hi])
    sel_kwh = 0.4
    assert (sel.kwh_span.low, sel.kwh, sel.kwh_span.high) == pytest.approx(
        (sel_kwh * 0.6 * f, sel_kwh * f, sel_kwh * 1.4 * f_hi))
    # training: v2, the promoted version (0.7 kWh, hardware counters), not v1's ladder fit
    assert train.n_runs == 1
    assert (train.kwh_span.low, train.kwh, train.kwh_span.high) == pytest.approx(
        (0.7 * 0.9 * f, 0.7 * f, 0.7 * 1.1 * f_hi))
    assert train.one_off_span.pair() == pytest.approx([0.7 * 0.9 * 0.03, 0.7 * 1.1 * 0.03])
    # inference: both versions of the rung in the period, not the ladder's, not after
    assert pred.n_runs == 2
    assert (pred.kwh_span.low, pred.kwh, pred.kwh_span.high) == pytest.approx((0.06, 0.1, 0.14))
    assert pred.kgco2e == pytest.approx(0.001 + 0.0015)   # grid figure preferred where known
    # collection: 1.0 x 0.25 (solar share of rows) + 0.2; accounting: 0.1 / 2 kinds
    assert ing.kwh == pytest.approx(0.45) and ing.kwh_span.pair() == pytest.approx([0.27, 0.63])
    assert acc.kwh == pytest.approx(0.05) and acc.kwh_span.pair() == pytest.approx([0.03, 0.07])

    c_kwh = (sel_kwh * f + 0.7 * f + 0.1 + 0.45 + 0.05,
             sel_kwh * 0.6 * f + 0.7 * 0.9 * f + 0.06 + 0.27 + 0.03,
             sel_kwh * 1.4 * f_hi + 0.7 * 1.1 * f_hi + 0.14 + 0.63 + 0.07)
    pred_kg = (0.0025, 0.0025 * 0.6, 0.0025 * 1.4)
    c_kg = tuple(0.03 * (c - p) + pk for c, p, pk in zip(c_kwh, (0.1, 0.06, 0.14), pred_kg,
                                                          strict=True))

    # Benefit: 0.001 MW less error over 24 h, x 1000 kWh/MWh x share [0.25, 0.5, 1.0];
    # CO2 difference (reserve - scheduled) [300 - 60, 400 - 40, 500 - 20] g/kWh
    av = benefit.avoided(km, 0.001, 24.0)
    assert (av.kwh_span.low, av.avoided_kwh, av.kwh_span.high) == pytest.approx((6, 12, 24))
    a_kg = (12 * 0.36, 6 * 0.24, 24 * 0.48)                        # central, low, high
    assert (av.avoided_kgco2e, av.kgco2e_span.low, av.kgco2e_span.high) == pytest.approx(a_kg)
    b = balance.Balance(kind="solar", model_id=V1, period_start=T0, period_end=T1, **parts,
                        avoided=av, key_name=km.key, key_value=0.5, method="test")
    assert (b.compute_kwh, *b.compute_kwh_span.pair()) == pytest.approx(c_kwh)
    assert (b.compute_kgco2e, *b.compute_kgco2e_span.pair()) == pytest.approx(c_kg)
    # net: the low end takes the least avoided and the most compute
    assert b.net_kgco2e == pytest.approx(a_kg[0] - c_kg[0])
    assert b.net_kgco2e_span.pair() == pytest.approx([a_kg[1] - c_kg[2], a_kg[2] - c_kg[1]])
    # balancing energy is shifted, not saved: it never enters a kWh net
    assert av.energy_effect == "shifted" and b.net_kwh is None and b.net_kwh_span is None
    # payback: one-off (selection + training, not amortised) / (avoided - running) per hour
    one_off = (0.03 * (sel_kwh + 0.7), 0.03 * (sel_kwh * 0.6 + 0.7 * 0.9),
               0.03 * (sel_kwh * 1.4 + 0.7 * 1.1))
    running = (0.03 * 0.5 + 0.0025, 0.03 * 0.3 + 0.0015, 0.03 * 0.7 + 0.0035)
    assert b.payback_hours == pytest.approx(one_off[0] / ((a_kg[0] - running[0]) / 24))
    assert b.payback_hours_range == pytest.approx(
        [one_off[1] / ((a_kg[2] - running[1]) / 24), one_off[2] / ((a_kg[1] - running[2]) / 24)])
    # break-even share: compute CO2 / avoided CO2 per unit of share ([240, 360, 480] g/kWh)
    per_unit = (0.001 * 24 * 1000 * 0.36, 0.001 * 24 * 1000 * 0.24, 0.001 * 24 * 1000 * 0.48)
    be = b.breakeven()
    assert be["breakeven_value"] == pytest.approx(c_kg[0] / per_unit[0])
    assert be["breakeven_range"] == pytest.approx([c_kg[1] / per_unit[2], c_kg[2] / per_unit[1]])
    assert be["statement"].startswith(f"this service pays back if at least "
                                      f"{c_kg[0] / per_unit[0] * 100:.2g} % of the forecast error")

    balance.upsert_balance(conn, b)
    balance.upsert_balance(conn, b)  # upsert: still one row
    rows = conn.execute("SELECT compute_kwh, net_kgco2e, breakeven, assumptions "
                        "FROM balances").fetchall()
    assert len(rows) == 1
    kwh, net, be_row, assumptions = rows[0]
    assert kwh == pytest.approx(c_kwh[0]) and net == pytest.approx(a_kg[0] - c_kg[0])
    assert be_row["parameter"] == "share_of_error_balanced" and be_row["value_used"] == 0.5
    assert assumptions["ranges"]["net_kgco2e_range"] == pytest.approx(
        [a_kg[1] - c_kg[2], a_kg[2] - c_kg[1]])
    assert assumptions["components"]["selection"]["n_runs"] == 4
    assert assumptions["unmeasured_runs"] == 0


def test_inference_is_counted_at_the_service_cadence(conn, runs) -> None:
    """2 inference runs recorded in 24 h, a service forecasting every 6 h: 4 runs counted."""
    parts = gather.gather_components(conn, "solar", V1, T0, T1, 168, inference_cadence_h=6)
    pred = parts["predict"]
    assert pred.kwh == pytest.approx(0.1 * 2) and pred.factor.central == pytest.approx(2)
    assert pred.kwh_span.pair() == pytest.approx([0.06 * 2, 0.14 * 2])
    assert "every 6 h" in pred.note
    # more runs than the cadence implies: counted as recorded, never scaled down
    parts = gather.gather_components(conn, "solar", V1, T0, T1, 168, inference_cadence_h=24)
    assert parts["predict"].kwh == pytest.approx(0.1)


def test_saved_energy_enters_a_kwh_net(conn, runs, model) -> None:
    km = model.kind("bike")
    parts = gather.gather_components(conn, "solar", V1, T0, T1, 168)
    av = benefit.avoided(km, 10.0, 24.0)
    b = balance.Balance(kind="bike", model_id=V1, period_start=T0, period_end=T1, **parts,
                        avoided=av, key_name=km.key, key_value=0.1, method="test")
    assert av.energy_effect == "saved"
    assert b.net_kwh == pytest.approx(av.avoided_kwh - b.compute_kwh)
    assert b.net_kwh_span.pair() == pytest.approx(
        [av.kwh_span.low - b.compute_kwh_span.high, av.kwh_span.high - b.compute_kwh_span.low])


def test_unmeasured_run_makes_totals_null_not_zero(conn, runs, model) -> None:
    run(conn, "predict", T0 + 9 * H, None, model_id=V2, kind="solar")
    km = model.kind("solar")
    parts = gather.gather_components(conn, "solar", V1, T0, T1, 168)
    predict = parts["predict"]
    assert predict.kwh is None and predict.n_unmeasured == 1
    assert predict.kwh_measured_part == pytest.approx(0.1)   # reported as a lower bound only
    b = balance.Balance(kind="solar", model_id=V1, period_start=T0, period_end=T1, **parts,
                        avoided=benefit.avoided(km, 0.001, 24.0), key_name=km.key,
                        key_value=0.5, method="test")
    assert (b.compute_kwh, b.compute_kgco2e, b.net_kgco2e, b.ratio, b.payback_hours,
            b.breakeven_value, b.payback_hours_range, b.breakeven_range()) == (None,) * 8
    assert b.ranges()["compute_kwh_range"] is None and b.ranges()["net_kgco2e_range"] is None
    assert b.avoided.avoided_kgco2e > 0      # the benefit side is still known
    assert "not measured" in json.dumps(b.breakeven())


def test_model_without_training_record_is_unknown(conn, runs) -> None:
    parts = gather.gather_components(conn, "solar", "never-trained", T0, T1, 168)
    assert parts["train"].kwh is None and "no training run recorded" in parts["train"].note


def test_carbon_intensity_range_of_compute_hand_checked(conn, snapshot_sites) -> None:
    """A run's CO2 is widened by the range of the intensity behind it: the éCO2mix values it
    could have been matched with, or the annual constant's sourced range."""
    from ecodemo.energy.grid import GridPoint, recompute_grid_emissions, store_grid_intensity

    conn.execute("INSERT INTO models (model_id, kind, name, version, status) "
                 "VALUES (%s, 'solar', 'lgbm_small', 2, 'promoted')", (V2,))
    run(conn, "predict", T0 + 6 * H, 0.05, model_id=V2, kind="solar")    # grid value known
    run(conn, "predict", T0 + 18 * H, 0.05, model_id=V2, kind="solar")   # none within 30 min
    m = timedelta(minutes=1)
    store_grid_intensity(conn, [GridPoint("FR", T0 + 5 * H + 30 * m, 80.0),
                                GridPoint("FR", T0 + 6 * H, 40.0),
                                GridPoint("FR", T0 + 6 * H + 15 * m, 60.0),
                                GridPoint("FR", T0 + 6 * H + 45 * m, 200.0)])   # too far
    assert recompute_grid_emissions(conn, zone="FR") == 1
    accounting = benefit.load_benefit_model().accounting
    annual = accounting.annual_intensity_factor
    assert annual is not None and annual.bounds() == (0.57, 1.76)
    parts = gather.gather_components(conn, "solar", V2, T0, T1, 168.0,
                                     band=lambda m: accounting.band(m)[0],
                                     annual_intensity=annual, zone="FR")
    pred = parts["predict"]
    # by hand: the first run used 40 g/kWh (the value at its start), and could have been
    # matched with 80 (5:30) to 40: x [1, 2]; 0.05 kWh x 40 g = 0.002 kg, estimated +/-40 %.
    # The second: CodeCarbon's 30 g/kWh x 0.05 kWh = 0.0015 kg, x [0.57, 1.76], +/-40 %.
    assert pred.n_grid_intensity == 1
    assert pred.kgco2e == pytest.approx(0.002 + 0.0015)
    assert pred.kgco2e_span.pair() == pytest.approx(
        [0.002 * 0.6 * 1 + 0.0015 * 0.6 * 0.57, 0.002 * 1.4 * 2 + 0.0015 * 1.4 * 1.76])
    # the energy is not widened by the intensity
    assert pred.kwh_span.pair() == pytest.approx([0.06, 0.14])
    # without the annual range (an override may drop it) the constant is a point
    point = gather.gather_components(conn, "solar", V2, T0, T1, 168.0,
                                     band=lambda m: accounting.band(m)[0], zone="FR")
    assert point["predict"].kgco2e_span.pair() == pytest.approx(
        [0.002 * 0.6 + 0.0015 * 0.6, 0.002 * 1.4 * 2 + 0.0015 * 1.4])
