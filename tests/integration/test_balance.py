"""Balance arithmetic on hand-checked numbers, and NULL (unmeasured) propagation."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ecodemo.energy import balance, benefit
from ecodemo.errors import ConfigError

T0 = datetime(2024, 5, 1, tzinfo=UTC)
T1 = T0 + timedelta(hours=24)
MODEL = "solar-lgbm_small-v1"

OVERRIDE = """
accounting:
  training_service_life_h: {value: 168, unit: h, source: test}
kinds:
  solar:
    energy_factors:
      share_of_error_balanced: {value: 0.5, unit: "1", source: test assumption}
    emission_terms:
      reserve_g_per_kwh: {value: 400, unit: gCO2e/kWh, source: test assumption}
      scheduled_g_per_kwh: {value: 40, sign: -1, unit: gCO2e/kWh, source: test assumption}
"""


def run(conn, stage, started_at, kwh, kg, *, model_id=None, kind=None, grid_kg=None):
    conn.execute(
        """INSERT INTO compute_runs (run_id, stage, model_id, sensor_kind, started_at,
               duration_s, energy_kwh, emissions_kg, grid_emissions_kg, measurement_method)
           VALUES (%s, %s, %s, %s, %s, 1.0, %s, %s, %s, 'estimated: test row')""",
        (str(uuid.uuid4()), stage, model_id, kind, started_at, kwh, kg, grid_kg))


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
    h = timedelta(hours=1)
    run(conn, "train", T0 - 24 * h, 0.7, 0.021, model_id=MODEL, kind="solar")
    run(conn, "backtest", T0 - 48 * h, 0.35, 0.0105, kind="solar")
    run(conn, "backtest", T0 - 400 * h, 9.0, 9.0, kind="solar")          # outside service life
    run(conn, "predict", T0 + 6 * h, 0.05, 0.0015, model_id=MODEL, kind="solar", grid_kg=0.001)
    run(conn, "predict", T0 + 18 * h, 0.05, 0.0015, model_id=MODEL, kind="solar")
    run(conn, "predict", T0 + 5 * h, 9.0, 9.0, model_id="wind-x", kind="wind")  # other model
    run(conn, "predict", T1 + h, 9.0, 9.0, model_id=MODEL, kind="solar")     # after period
    run(conn, "ingest", T0 + 3 * h, 1.0, 0.03)                    # all kinds: x share
    run(conn, "ingest", T0 + 4 * h, 0.2, 0.006, kind="solar")     # this kind: fully
    run(conn, "ingest", T0 + 4 * h, 9.0, 9.0, kind="bike")        # other kind
    run(conn, "evaluate", T0 + 7 * h, 9.0, 9.0)                   # overhead: not attributed
    # rows ingested in the period: 1 solar, 3 bike -> solar share 0.25
    solar = conn.execute("SELECT sensor_id FROM sensors WHERE kind='solar' LIMIT 1").fetchone()[0]
    bike = conn.execute("SELECT sensor_id FROM sensors WHERE kind='bike' LIMIT 1").fetchone()[0]
    reading(conn, solar, T0, T0 + 3 * h)
    for i in range(3):
        reading(conn, bike, T0 + i * h, T0 + 3 * h)


def test_override_is_deep_merged(model) -> None:
    solar = model.kind("solar")
    assert solar.energy_factors["share_of_error_balanced"].value == 0.5
    assert solar.energy_factors["kwh_per_mwh"].value == 1000      # untouched default kept
    assert solar.net_g_per_kwh() == 400 - 40
    assert model.kind("bike").key == "share_acted_on"


def test_bad_override_is_one_config_error(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kinds:\n  solar:\n    key: nope\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="key 'nope'"):
        benefit.load_benefit_model(path)


def test_balance_arithmetic_hand_checked(conn, runs, model) -> None:
    km = model.kind("solar")
    ingest, train, predict = balance.gather_components(conn, "solar", MODEL, T0, T1, 168)
    # by hand: training (0.7 + 0.35) kWh x 24/168; CO2 (0.021 + 0.0105) x 24/168
    assert train.kwh == pytest.approx(1.05 / 7)
    assert train.kgco2e == pytest.approx(0.0315 / 7)
    assert train.one_off_kgco2e == pytest.approx(0.0315)
    # inference: 2 runs; the first has a grid-intensity figure (0.001) preferred to 0.0015
    assert predict.kwh == pytest.approx(0.1)
    assert predict.kgco2e == pytest.approx(0.001 + 0.0015)
    assert predict.kgco2e_annual_constant == pytest.approx(0.003)
    # ingestion: 1.0 x 0.25 (solar share of rows) + 0.2 (solar's own run)
    assert ingest.kwh == pytest.approx(0.45)
    assert ingest.kgco2e == pytest.approx(0.03 * 0.25 + 0.006)

    # 0.001 MW less error over 24 h, half balanced, 400 - 40 g/kWh
    av = benefit.avoided(km, 0.001, 24.0)
    assert av.avoided_kwh == pytest.approx(0.001 * 24 * 1000 * 0.5)          # 12 kWh
    assert av.avoided_kgco2e == pytest.approx(12 * 360 / 1000)                # 4.32 kg
    b = balance.Balance(kind="solar", model_id=MODEL, period_start=T0, period_end=T1,
                        ingest=ingest, train=train, predict=predict, avoided=av,
                        key_name=km.key, key_value=0.5, method="test")
    compute_kg = 0.0315 / 7 + 0.0025 + 0.0135                                # 0.0205
    assert b.compute_kwh == pytest.approx(0.15 + 0.1 + 0.45)
    assert b.compute_kgco2e == pytest.approx(compute_kg)
    assert b.net_kgco2e == pytest.approx(4.32 - compute_kg)
    assert b.ratio == pytest.approx(4.32 / compute_kg)
    # payback: one-off training CO2 / (avoided - running) per hour
    assert b.payback_hours == pytest.approx(0.0315 / ((4.32 - 0.0135 - 0.0025) / 24))
    # break-even share: compute CO2 / (0.001 x 24 x 1000 x 0.36)
    assert b.breakeven_value == pytest.approx(compute_kg / 8.64)
    b_at_breakeven = benefit.avoided(
        km.model_copy(update={"energy_factors": {
            **km.energy_factors,
            "share_of_error_balanced": km.energy_factors["share_of_error_balanced"].model_copy(
                update={"value": b.breakeven_value})}}), 0.001, 24.0)
    assert b_at_breakeven.avoided_kgco2e == pytest.approx(compute_kg)  # net = 0 there

    balance.upsert_balance(conn, b)
    balance.upsert_balance(conn, b)  # upsert: still one row
    rows = conn.execute("SELECT compute_kwh, net_kgco2e, payback_hours, breakeven, assumptions "
                        "FROM balances").fetchall()
    assert len(rows) == 1
    kwh, net, payback, be, assumptions = rows[0]
    assert kwh == pytest.approx(0.7) and net == pytest.approx(4.32 - compute_kg)
    assert be["parameter"] == "share_of_error_balanced" and be["value_used"] == 0.5
    assert assumptions["unmeasured_runs"] == 0


def test_unmeasured_run_makes_totals_null_not_zero(conn, runs, model) -> None:
    run(conn, "predict", T0 + 9 * timedelta(hours=1), None, None, model_id=MODEL, kind="solar")
    km = model.kind("solar")
    ingest, train, predict = balance.gather_components(conn, "solar", MODEL, T0, T1, 168)
    assert predict.kwh is None and predict.n_unmeasured == 1
    assert predict.kwh_measured_part == pytest.approx(0.1)   # reported as a lower bound only
    b = balance.Balance(kind="solar", model_id=MODEL, period_start=T0, period_end=T1,
                        ingest=ingest, train=train, predict=predict,
                        avoided=benefit.avoided(km, 0.001, 24.0), key_name=km.key,
                        key_value=0.5, method="test")
    assert (b.compute_kwh, b.compute_kgco2e, b.net_kgco2e, b.ratio, b.payback_hours,
            b.breakeven_value) == (None,) * 6
    assert b.avoided.avoided_kgco2e > 0      # the benefit side is still known
    assert "not measured" in json.dumps(b.breakeven())


def test_model_without_training_record_is_unknown(conn, runs) -> None:
    _ingest, train, _predict = balance.gather_components(conn, "solar", "never-trained", T0, T1,
                                                         168)
    assert train.kwh is None and "no training run recorded" in train.note
