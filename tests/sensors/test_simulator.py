"""Simulator: deterministic, plausible shapes, window-independent values, idempotent ingest."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import yaml

from ecodemo.sensors import simulator
from ecodemo.sensors.catalogue import load_catalogue, register_catalogue
from tests.sensors.conftest import CATALOGUE


def _frame(table) -> pd.DataFrame:
    df = table.to_pandas()
    df["sensor_id"] = df["sensor_id"].astype(str)
    return df


def test_shape_units_and_determinism() -> None:
    a = simulator.simulate(8, "2024-06-01", "2024-06-08", "1h", seed=3)
    b = simulator.simulate(8, "2024-06-01", "2024-06-08", "1h", seed=3)
    c = simulator.simulate(8, "2024-06-01", "2024-06-08", "1h", seed=4)
    assert a.num_rows == 8 * 7 * 24 and a.equals(b) and not a.equals(c)
    df = _frame(a)
    units = df.groupby("sensor_id")["unit"].first().astype(str).to_dict()
    assert units["sim-solar-00000"] == "MW" and units["sim-traffic-00002"] == "vehicles/h"
    assert (df["value"] >= 0).all() and np.isfinite(df["value"]).all()


def test_values_do_not_depend_on_the_window() -> None:
    whole = _frame(simulator.simulate(4, "2024-03-01", "2024-03-10", "1h", seed=9))
    part = _frame(simulator.simulate(4, "2024-03-05", "2024-03-07", "1h", seed=9))
    merged = part.merge(whole, on=["sensor_id", "timestamp"], suffixes=("_p", "_w"))
    assert len(merged) == len(part) and (merged["value_p"] == merged["value_w"]).all()


def test_physics_solar_night_zero_traffic_weekly_and_holiday_pattern() -> None:
    sensors = [simulator.SimSensor("pv", "solar", 45.76, 4.84, 10.0),
               simulator.SimSensor("road", "traffic", 47.2, -1.55, 1000.0),
               simulator.SimSensor("bike", "bike", 44.84, -0.57, 300.0)]
    df = _frame(simulator.simulate_sensors(sensors, "2024-04-29", "2024-05-13", "1h", seed=1))
    df["local"] = df["timestamp"].dt.tz_convert("Europe/Paris")
    pv = df[df.sensor_id == "pv"]
    night = pv[(pv.local.dt.hour <= 3) | (pv.local.dt.hour >= 23)]
    assert (night.value == 0).all()
    assert 3.0 < pv.value.max() <= 10.0  # up to 85 % of capacity under clear sky in May
    road = df[df.sensor_id == "road"]
    peak = road[road.local.dt.hour == 8]
    by_day = peak.set_index(peak.local.dt.date)["value"]
    # Wednesday 1 May 2024 (Labour Day) and Sunday 5 May look alike, unlike Tuesday 30 April
    tue, holiday, sun = (by_day[pd.Timestamp(d).date()] for d in
                         ("2024-04-30", "2024-05-01", "2024-05-05"))
    assert tue > 2 * holiday and tue > 2 * sun
    bike = df[df.sensor_id == "bike"]
    assert bike.groupby(bike.local.dt.hour)["value"].mean().idxmax() in (8, 9, 17, 18, 19)


def test_catalogue_simulator_source_incremental_and_rerun(conn, tmp_path) -> None:
    raw = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    raw["sources"]["simulator"]["params"]["backfill_days"] = 2
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    cat = load_catalogue(path)
    register_catalogue(conn, cat)
    end = datetime(2024, 6, 3, tzinfo=UTC)
    first = simulator.ingest(conn, cat, "simulator", end=end)
    assert first["inserted"] == 4 * 48 and first["quarantined"] == 0
    again = simulator.ingest(conn, cat, "simulator", end=end)
    assert again["read"] == 0
    replay = simulator.ingest(conn, cat, "simulator", start=datetime(2024, 6, 1, tzinfo=UTC),
                              end=end)
    assert (replay["inserted"], replay["updated"], replay["unchanged"]) == (0, 0, 4 * 48)
    later = simulator.ingest(conn, cat, "simulator", end=datetime(2024, 6, 3, 6, tzinfo=UTC))
    assert later["inserted"] == 4 * 6
