"""Forecasting stages on the real store (PostgreSQL) with the bundled snapshot."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from ecodemo.errors import ModelError
from ecodemo.models import registry, stages
from ecodemo.sensors.snapshot import ingest_snapshot

MODEL_KEYS = set(stages.MODEL_FIELDS)


@pytest.fixture()
def store(settings, conn, snapshot_sites):
    ingest_snapshot(settings)
    return settings


def test_kinds_with_data(store) -> None:
    assert stages.kinds_with_data(store) == ["bike", "solar", "traffic", "wind"]


def test_ladder_on_a_single_sensor_kind_writes_json_evaluations_choice(store, conn) -> None:
    out = stages.run_ladder(store, "wind", horizon_h=24, folds=3,
                            rungs=["persistence", "lgbm_small"])
    assert set(out) == {"kind", "horizon_hours", "sensors", "folds", "protocol", "weather",
                        "models", "chosen", "reason", "notes"}
    assert (out["kind"], out["horizon_hours"], out["sensors"], out["folds"]) == ("wind", 24, 1, 3)
    # chosen before the test: the selection origins all precede the first test origin
    sel, test = out["protocol"]["selection"], out["protocol"]["test"]
    assert sel["folds"] > 0 and test["folds"] == 3
    assert sel["first_origin"] <= sel["last_origin"] < test["first_origin"] <= test["last_origin"]
    first = datetime.fromisoformat(test["first_origin"])
    assert first.astimezone(ZoneInfo("Europe/Paris")).hour == 12   # issued at local noon
    # the snapshot has observed weather only for Paris (bikes); wind reads none
    assert out["weather"] == {"provenance": "none", "variables": []}
    assert [m["name"] for m in out["models"]] == ["persistence", "seasonal_naive", "lgbm_small"]
    for m in out["models"]:
        assert set(m) == MODEL_KEYS
        assert m["nmae"] > 0 and 0 <= m["coverage_p10_p90"] <= 1
        assert m["selection"]["nmae"] > 0
        assert m["day_ahead"]["n"] == 3 * 48 and m["day_ahead"]["nmae"] > 0   # 3 next days
        assert set(m["coverage_by_lead_h"]) == {"0-1h", "1-3h", "3-6h", "6-12h", "12-24h",
                                                "24-48h"}
    naive = next(m for m in out["models"] if m["name"] == "seasonal_naive")
    assert naive["skill_vs_seasonal_naive"] == pytest.approx(0.0)
    assert naive["day_ahead"]["skill_vs_seasonal_naive"] == pytest.approx(0.0)
    # the choice follows the selection figures, not the test ones
    best_sel = min(m["selection"]["nmae"] for m in out["models"])
    chosen = next(m for m in out["models"] if m["name"] == out["chosen"])
    assert chosen["selection"]["nmae"] <= best_sel * 1.02 + 1e-12
    assert "selection nMAE" in out["reason"]
    json.dumps(out)  # JSON-able
    assert out["chosen"] in {m["name"] for m in out["models"]} and out["reason"]
    n_eval = conn.execute("SELECT count(*) FROM evaluations WHERE kind = 'wind'").fetchone()[0]
    assert n_eval == 3 * 2  # 3 rungs x (1 sensor + '__all__')
    details = conn.execute("SELECT details FROM evaluations WHERE kind = 'wind' AND sensor_id = "
                           "'__all__' AND model_name = 'seasonal_naive'").fetchone()[0]
    assert details["protocol"] == out["protocol"] and details["weather"] == out["weather"]
    assert details["day_ahead"] == naive["day_ahead"]
    assert "per_origin" not in details          # only a sensor's own row has its errors
    # each sensor's row keeps its errors per test origin: they add up to its pooled MAE
    for mae, n, po in conn.execute(
            "SELECT mae, n, details->'per_origin' FROM evaluations WHERE kind = 'wind' AND "
            "sensor_id <> '__all__'"):
        assert len(po["origins"]) == 3 and po["origins"][0] == test["first_origin"]
        assert sum(po["n"]) == n
        assert sum(po["abs_error_sum"]) / sum(po["n"]) == pytest.approx(mae)
    choice = conn.execute("SELECT chosen_name, model_id, reason FROM model_choices").fetchone()
    assert choice[0] == out["chosen"] and choice[2] == out["reason"]
    status = conn.execute("SELECT status FROM models WHERE model_id = %s",
                          (choice[1],)).fetchone()[0]
    assert status == "candidate"
    stages_run = {r[0] for r in conn.execute("SELECT stage FROM compute_runs "
                                             "WHERE sensor_kind = 'wind'")}
    assert stages_run == {"train", "predict", "backtest"}
    # rerun: evaluations are upserted, not duplicated
    stages.run_ladder(store, "wind", horizon_h=24, folds=3, rungs=["persistence", "lgbm_small"])
    assert conn.execute("SELECT count(*) FROM evaluations").fetchone()[0] == n_eval


def test_train_forecast_across_dst_and_leakage(store, conn) -> None:
    out = stages.train(store, "bike", rung="lgbm_small")
    assert out["status"] == "promoted"
    issued = datetime(2021, 3, 27, 12, tzinfo=UTC)           # DST starts 28 March, 02:00 local
    res = stages.forecast(store, "bike", issued_at=issued, horizon_h=48)
    assert res["rows"] == 6 * 48
    # no weather forecast in the store: the future is forecast without weather, and says so
    assert res["weather"] == {"provenance": "none", "variables": []}
    run = conn.execute("SELECT details FROM compute_runs WHERE stage = 'predict' AND "
                       "details->>'issued_at' = %s", (issued.isoformat(),)).fetchone()
    assert run is not None and run[0]["weather"]["provenance"] == "none"
    rows = conn.execute("SELECT sensor_id, ts, horizon_h, p10, p50, p90 FROM forecasts "
                        "WHERE issued_at = %s ORDER BY sensor_id, ts", (issued,)).fetchall()
    one = [r for r in rows if r[0] == rows[0][0]]
    assert [r[1] for r in one] == [issued + timedelta(hours=k) for k in range(1, 49)]
    assert [r[2] for r in one] == list(range(1, 49))
    assert all(r[3] <= r[4] <= r[5] for r in rows)
    # Readings after the issue time change nothing in a forecast issued before them.
    conn.execute("UPDATE readings SET value = value * 5 + 100 WHERE ts > %s", (issued,))
    stages.forecast(store, "bike", issued_at=issued, horizon_h=48)
    again = conn.execute("SELECT sensor_id, ts, horizon_h, p10, p50, p90 FROM forecasts "
                         "WHERE issued_at = %s ORDER BY sensor_id, ts", (issued,)).fetchall()
    assert again == rows
    n_predict = conn.execute("SELECT count(*) FROM compute_runs WHERE stage = 'predict' "
                             "AND model_id = %s", (out["model_id"],)).fetchone()[0]
    assert n_predict == 2


def test_promote_and_rollback(store, conn) -> None:
    a = stages.train(store, "traffic", rung="persistence")
    b = stages.train(store, "traffic", rung="climatology")
    assert registry.promoted(conn, "traffic").model_id == b["model_id"]
    assert registry.rollback(conn, "traffic").model_id == a["model_id"]
    statuses = dict(conn.execute("SELECT model_id, status FROM models").fetchall())
    assert statuses == {a["model_id"]: "promoted", b["model_id"]: "retired"}
    assert registry.promote(conn, b["model_id"]).status == "promoted"
    assert registry.promoted(conn, "traffic").model_id == b["model_id"]
    with pytest.raises(psycopg.errors.UniqueViolation):  # the database keeps one per kind
        conn.execute("UPDATE models SET status = 'promoted' WHERE model_id = %s",
                     (a["model_id"],))
    with pytest.raises(ModelError):
        registry.promote(conn, "traffic-nope-v9")
    res = stages.forecast(store, "traffic")
    assert res["model_id"] == b["model_id"] and res["rows"] > 0
    meta = json.loads((store.models_dir / b["model_id"] / "metadata.json").read_text())
    assert {"features", "training_window", "data_sha256", "metrics", "energy",
            "library_versions"} <= set(meta)


def test_forecast_without_model_is_a_clear_error(store) -> None:
    with pytest.raises(ModelError, match="ecodemo train"):
        stages.forecast(store, "solar")


def test_grid_follows_the_sensors_with_readings(conn) -> None:
    """A registered sensor without readings (30 min) must not set the grid of a kind whose only
    readings are at 15 min; with both present at equal count, the coarser grid wins."""
    import pyarrow as pa

    from ecodemo.models.data import load_panel
    from ecodemo.store.ingest import ingest_table
    from ecodemo.store.sites import Site, register_sites

    register_sites(conn, [
        Site("pv-15", "PV 15 min", "solar", 39.7, -105.2, "W", resolution="PT15M"),
        Site("pv-30", "PV 30 min, no data yet", "solar", 49.9, 2.8, "W", resolution="PT30M")])
    stamps = [(datetime(2024, 6, 1, tzinfo=UTC) + timedelta(minutes=15 * i)).isoformat()
              for i in range(8)]
    ingest_table(conn, pa.table({"timestamp": stamps, "site_id": ["pv-15"] * 8,
                                 "value": [str(i) for i in range(8)], "unit": ["W"] * 8}), "t")
    conn.commit()
    assert load_panel(conn, "solar").step == timedelta(minutes=15)
    ingest_table(conn, pa.table({"timestamp": stamps[::2], "site_id": ["pv-30"] * 4,
                                 "value": ["1"] * 4, "unit": ["W"] * 4}), "t")
    conn.commit()
    assert load_panel(conn, "solar").step == timedelta(minutes=30)


def test_read_readings_matches_a_plain_select(store, conn) -> None:
    """The byte-level read (one row per sensor, big-endian arrays) returns exactly the stored
    readings, with the time filter applied and sensors without readings left out."""
    from ecodemo.models.data import read_readings

    ids = [r[0] for r in conn.execute(
        "SELECT sensor_id FROM sensors WHERE kind = 'bike' ORDER BY 1 LIMIT 3")]
    ids.append("no-such-sensor")
    since = conn.execute("SELECT min(ts) + interval '10 days' FROM readings "
                         "WHERE sensor_id = ANY(%s)", (ids,)).fetchone()[0]
    until = since + timedelta(days=20)
    got = read_readings(conn, ids, since, until)
    want = conn.execute(
        "SELECT sensor_id, ts, value FROM readings WHERE sensor_id = ANY(%s) "
        "AND ts BETWEEN %s AND %s ORDER BY 1, 2", (ids, since, until)).fetchall()
    assert len(want) > 100
    rows = sorted(zip(got["sensor_id"].astype(str), got["ts"], got["value"], strict=True))
    assert [(s, t.to_pydatetime(), v) for s, t, v in rows] == [
        (s, t, float(v)) for s, t, v in want]
    assert str(got["ts"].dt.tz) == "UTC"
    assert read_readings(conn, ["no-such-sensor"], None, None).empty


def test_panels_read_weather_forecasts_as_issued(store, conn) -> None:
    """Forecasts in ``weather_forecasts`` reach the panel; one issued after ``until`` does not;
    a forecast of the future reads no observed weather beyond its issue time."""
    import pandas as pd

    from ecodemo.models.data import load_panel
    from ecodemo.store.weather_forecasts import insert_forecasts

    site = conn.execute("SELECT site_id FROM sensors WHERE kind = 'wind' LIMIT 1").fetchone()[0]
    t0 = datetime(2013, 12, 20, 12, tzinfo=UTC)
    rows = []
    for k, issued in enumerate([t0, t0 + timedelta(hours=6)]):
        for h in range(1, 49):
            rows.append((f"open-meteo:{site}", "wind_speed_100m_ms", issued,
                         issued + timedelta(hours=h), 5.0 + k))
    frame = pd.DataFrame(rows, columns=["station_id", "variable", "issued_at", "valid_at",
                                        "value"])
    assert insert_forecasts(conn, frame, "test") == 96
    assert insert_forecasts(conn, frame.assign(value=50.0), "test") == 0   # kept as issued
    panel = load_panel(conn, "wind")
    assert panel.weather_provenance == "forecast_as_issued"
    target = pd.DatetimeIndex([t0 + timedelta(hours=12)])
    w = panel.issued_weather
    assert w is not None and w.variables == ["wind_speed_100m_ms"]
    assert w.at("wind_speed_100m_ms", target, pd.DatetimeIndex([t0]))[0] == 5.0
    assert w.at("wind_speed_100m_ms", target, target - timedelta(hours=1))[0] == 6.0
    early = load_panel(conn, "wind", until=t0 + timedelta(hours=3))
    assert early.issued_weather is not None
    assert early.issued_weather.at("wind_speed_100m_ms", target, target)[0] == 5.0
    # bikes: the Paris station's observations, never past the issue time for a forecast
    issued = datetime(2021, 3, 27, 12, tzinfo=UTC)
    bikes = load_panel(conn, "bike", since=issued - timedelta(days=16), until=issued,
                       observed_ahead_h=0)
    assert bikes.weather is not None and bikes.weather.index.max() <= issued
