"""éCO2mix taux_co2 payload -> grid_intensity -> per-run emissions at the time of the run."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ecodemo.energy.grid import (
    parse_eco2mix_taux_co2,
    recompute_grid_emissions,
    store_grid_intensity,
)
from ecodemo.errors import InputError
from ecodemo.metering import track_run

PAYLOAD = Path(__file__).parent / "data" / "eco2mix_national_tr_records.json"


def _payload() -> dict:
    return json.loads(PAYLOAD.read_text(encoding="utf-8"))


def _insert_run(conn, started_at: datetime, duration_s: float, energy_kwh: float | None,
                annual_g: float = 32.0) -> str:
    run_id = str(uuid.uuid4())
    conn.execute(
        """INSERT INTO compute_runs (run_id, stage, started_at, duration_s, energy_kwh,
               emissions_kg, carbon_intensity_g_per_kwh, intensity_source, measurement_method)
           VALUES (%s, 'train', %s, %s, %s, %s, %s, 'CodeCarbon annual', 'estimated: test')""",
        (run_id, started_at, duration_s, energy_kwh,
         None if energy_kwh is None else energy_kwh * annual_g / 1000, annual_g))
    return run_id


def test_parse_reads_taux_co2_and_skips_nulls() -> None:
    payload = _payload()
    points = parse_eco2mix_taux_co2(payload)
    expected = [(datetime.fromisoformat(r["date_heure"]), r["taux_co2"])
                for r in payload["results"] if r["taux_co2"] is not None]
    assert len(points) == len(expected) < len(payload["results"])  # nulls skipped, not 0
    assert [(p.ts, p.g_per_kwh) for p in points] == expected
    assert all(p.ts.utcoffset() == timedelta(0) and p.zone == "FR" for p in points)


def test_parse_rejects_other_shapes() -> None:
    with pytest.raises(InputError, match="results"):
        parse_eco2mix_taux_co2({"records": []})  # the retired v1 API shape
    bad = {"results": [{"date_heure": "2024-05-01T08:00:00", "taux_co2": 20}]}
    with pytest.raises(InputError, match="UTC offset"):
        parse_eco2mix_taux_co2(bad)
    with pytest.raises(InputError, match="implausible"):
        parse_eco2mix_taux_co2({"results": [{"date_heure": "2024-05-01T08:00:00+00:00",
                                             "taux_co2": -5}]})


def test_one_plausibility_limit_for_both_readers(conn) -> None:
    """The éCO2mix parser and the sensors' writer share the table's one bound (2,000 g/kWh)."""
    import pyarrow as pa

    from ecodemo.sensors.carbon_intensity import upsert_grid_intensity
    from ecodemo.store.grid_intensity import MAX_G_PER_KWH

    ts = "2024-05-01T08:00:00+00:00"
    assert parse_eco2mix_taux_co2({"results": [{"date_heure": ts, "taux_co2": 1800}]})
    with pytest.raises(InputError, match="implausible"):
        parse_eco2mix_taux_co2({"results": [{"date_heure": ts, "taux_co2": MAX_G_PER_KWH + 1}]})
    table = pa.table({"timestamp": [ts, "2024-05-01T09:00:00+00:00"],
                      "value": [1800.0, MAX_G_PER_KWH + 1]})
    out = upsert_grid_intensity(conn, table, zone="FR", label="test", source="test")
    assert out == {"written": 1, "quarantined": 1}


def test_recompute_uses_intensity_at_run_time(conn) -> None:
    points = parse_eco2mix_taux_co2(_payload())
    assert store_grid_intensity(conn, points) == len(points)
    assert store_grid_intensity(conn, points) == 0  # idempotent
    by_ts = {p.ts: p.g_per_kwh for p in points}
    first = points[0].ts
    # 1) midpoint 7.5 min after the first value: uses it (at or before the midpoint)
    r1 = _insert_run(conn, first + timedelta(minutes=7), 60, 0.002)
    # 2) midpoint just after a quarter-hour whose taux_co2 is null: the previous value counts
    null_ts = [datetime.fromisoformat(r["date_heure"]) for r in _payload()["results"]
               if r["taux_co2"] is None][0]
    r2 = _insert_run(conn, null_ts + timedelta(minutes=1), 30, 0.004)
    prev_of_null = max(t for t in by_ts if t < null_ts)
    # 3) far from any value: no grid figure, CodeCarbon's stays the only one
    r3 = _insert_run(conn, first + timedelta(hours=6), 10, 0.001)
    # 4) unmeasured energy: intensity known, emissions stay NULL
    r4 = _insert_run(conn, first + timedelta(minutes=16), 10, None)
    # 5) a run just before the first value: uses the next one, within tolerance
    r5 = _insert_run(conn, first - timedelta(minutes=10), 20, 0.003)

    assert recompute_grid_emissions(conn) == 4

    def row(run_id):
        return conn.execute(
            "SELECT grid_intensity_g_per_kwh, grid_emissions_kg, grid_intensity_source, "
            "emissions_kg, carbon_intensity_g_per_kwh FROM compute_runs WHERE run_id = %s",
            (run_id,)).fetchone()

    g, kg, src, annual_kg, annual_g = row(r1)
    assert g == by_ts[first] and kg == pytest.approx(0.002 * by_ts[first] / 1000)
    assert "taux_co2" in src and "at or before" in src
    assert annual_kg == pytest.approx(0.002 * annual_g / 1000)  # CodeCarbon's figure kept
    g, kg, _src, *_ = row(r2)
    assert g == by_ts[prev_of_null] and kg == pytest.approx(0.004 * g / 1000)
    assert row(r3)[:3] == (None, None, None)
    g, kg, _src, annual_kg, _ = row(r4)
    assert g is not None and kg is None and annual_kg is None
    g, kg, src, *_ = row(r5)
    assert g == by_ts[first] and "after" in src
    # already filled runs are not touched again unless asked
    assert recompute_grid_emissions(conn) == 0


def test_real_tracked_run_gets_grid_figure(settings, conn) -> None:
    with track_run(settings, "predict", sensor_kind="solar") as run:
        sum(i * i for i in range(200_000))
    quarter = run.started_at.replace(minute=run.started_at.minute // 15 * 15, second=0,
                                     microsecond=0)
    payload = {"total_count": 1, "results": [
        {"date_heure": quarter.astimezone(UTC).isoformat(), "taux_co2": 41}]}
    store_grid_intensity(conn, parse_eco2mix_taux_co2(payload))
    assert recompute_grid_emissions(conn) == 1
    kwh, kg, g, annual_kg = conn.execute(
        "SELECT energy_kwh, grid_emissions_kg, grid_intensity_g_per_kwh, emissions_kg "
        "FROM compute_runs WHERE run_id = %s", (run.run_id,)).fetchone()
    assert kwh and kwh > 0 and g == 41
    assert kg == pytest.approx(kwh * 41 / 1000)
    assert annual_kg != pytest.approx(kg)  # the two figures differ and both are kept
