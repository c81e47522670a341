"""Quality checks: injected faults are found, clean real data stays mostly unflagged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ecodemo.sensors import quality, simulator
from ecodemo.store.ingest import CHECK_FLAGS_MASK, ingest_csv, ingest_table
from tests.conftest import SNAPSHOT


def _series(kind: str, cap: float = 10.0, days: int = 60) -> pd.Series:
    sensors = [simulator.SimSensor("x", kind, 48.85, 2.35, cap)]
    t = simulator.simulate_sensors(sensors, "2024-03-01", pd.Timestamp("2024-03-01")
                                   + pd.Timedelta(days=days), "1h", seed=5).to_pandas()
    return t.set_index("timestamp")["value"]


def test_each_injected_fault_is_flagged_where_injected() -> None:
    s = _series("traffic", 900.0)
    spike_at = s.index[24 * 30 + 11]
    s[spike_at] = s.max() * 12
    flat = s.index[24 * 40: 24 * 40 + 10]
    s[flat] = 123.0
    mixup_day = s.index[24 * 50: 24 * 51]
    s[mixup_day] = s[mixup_day] * 1000.0
    rep = quality.check_series("x", s, kind="traffic")
    flagged = pd.Series(rep.flags, index=s.index)
    assert flagged[spike_at] & quality.FLAG_SPIKE
    assert (flagged[flat] & quality.FLAG_FLAT_LINE).all()
    assert (flagged[mixup_day] & quality.FLAG_UNIT_SUSPECT).all()
    # nothing else flagged as a unit mix-up or flat line
    assert rep.flag_counts["unit_suspect"] == 24 and rep.flag_counts["flat_line"] == 10


def test_solar_at_night_is_impossible_and_gaps_are_counted() -> None:
    s = _series("solar", 10.0)
    night = s.index[(s.index.hour == 1)][:5]  # 01:00 UTC: sun far below the horizon
    s[night] = 4.0
    s = s.drop(s.index[24 * 20: 24 * 20 + 7])  # a 7-hour hole
    rep = quality.check_series("x", s, kind="solar", latitude=48.85, longitude=2.35)
    flagged = pd.Series(rep.flags, index=s.index)
    assert (flagged[night] & quality.FLAG_IMPOSSIBLE).all()
    assert rep.flag_counts["impossible"] == 5
    assert len(rep.gaps) == 1 and rep.gaps[0][1] == pd.Timedelta(hours=7)
    assert rep.flag_counts["flat_line"] == 0  # nights of zeros are not a stuck sensor


@pytest.mark.parametrize("kind", ["solar", "wind", "traffic", "bike"])
def test_clean_simulated_series_have_few_flags(kind) -> None:
    s = _series(kind, 20.0 if kind in ("solar", "wind") else 500.0)
    rep = quality.check_series("x", s, kind=kind, latitude=48.85, longitude=2.35)
    assert rep.flags.astype(bool).mean() < 0.01


def test_check_in_store_fills_sensor_quality(conn, snapshot_sites) -> None:
    ingest_csv(conn, SNAPSHOT / "transport_road.csv.gz")
    conn.execute("INSERT INTO quarantine (source, sensor_id, raw, reason) VALUES "
                 "('t', 'paris-road-376-flow', 'x', 'duplicate sensor and timestamp in the "
                 "same batch (later row kept)')")
    res = quality.check_sensor_in_store(conn, "paris-road-376-flow")
    assert res["n_readings"] == 6828 and res["n_gaps"] > 0 and res["duplicates_quarantined"] == 1
    row = conn.execute("SELECT n_readings, n_gaps, n_quarantined, flags->>'status', "
                       "last_ts FROM sensor_quality WHERE sensor_id = 'paris-road-376-flow'"
                       ).fetchone()
    assert row is not None and row[0] == 6828 and row[1] == res["n_gaps"] and row[2] == 1
    assert row[3] == "check"
    flagged_sql = ("SELECT count(*) FROM readings WHERE sensor_id = 'paris-road-376-flow' "
                   f"AND quality_flags & {CHECK_FLAGS_MASK} <> 0")
    n_flags = conn.execute(flagged_sql).fetchone()
    assert n_flags is not None and n_flags[0] == res["spike"] + res["flat_line"] > 0
    again = quality.check_sensor_in_store(conn, "paris-road-376-flow")  # recomputed, same
    assert again["n_flagged"] == res["n_flagged"]
    assert conn.execute(flagged_sql).fetchone() == n_flags
    assert np.isfinite(res["longest_gap_h"])

    # re-ingesting the identical file changes nothing and keeps the check flags
    rerun = ingest_csv(conn, SNAPSHOT / "transport_road.csv.gz")
    assert (rerun.inserted, rerun.updated) == (0, 0)
    assert conn.execute(flagged_sql).fetchone() == n_flags
    # a corrected value clears that row's check flags (until the next check)
    ts = conn.execute("SELECT ts FROM readings WHERE sensor_id = 'paris-road-376-flow' AND "
                      f"quality_flags & {CHECK_FLAGS_MASK} <> 0 LIMIT 1").fetchone()[0]
    table = pa.table({"timestamp": [ts.isoformat()], "site_id": ["paris-road-376-flow"],
                      "value": ["321"], "unit": ["vehicles/h"]})
    fixed = ingest_table(conn, table, "correction")
    assert fixed.updated == 1
    flags = conn.execute("SELECT quality_flags FROM readings WHERE sensor_id = "
                         "'paris-road-376-flow' AND ts = %s", (ts,)).fetchone()
    assert flags == (0,)
