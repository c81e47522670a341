"""The decisions the DAGs ask the store for: sources, kinds, training due, low-carbon window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ecodemo import pipeline
from ecodemo.config import Settings
from ecodemo.scheduling import (
    ABSOLUTE_LOW_G_PER_KWH,
    kinds_due_for_training,
    kinds_with_promoted_model,
    low_carbon_window,
)
from ecodemo.sensors.catalogue import load_catalogue
from ecodemo.store.kinds import kinds_with_readings
from tests.catalogues import snapshot_only

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture()
def demo_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """ECODEMO_SENSORS_DIR: a catalogue that enables the bundled snapshot as source 'snapshot'."""
    folder = snapshot_only(tmp_path / "sensors")
    monkeypatch.setenv("ECODEMO_SENSORS_DIR", str(folder))
    return folder


@pytest.fixture()
def ingested(settings: Settings, demo_catalogue: Path) -> dict:
    return pipeline.ingest(settings, "snapshot")


def _add_model(conn: psycopg.Connection, kind: str, created_at: str = "now()") -> None:
    conn.execute(f"""INSERT INTO models (model_id, kind, name, version, status, created_at)
                     VALUES (%s, %s, 'seasonal_naive', 1, 'promoted', {created_at})""",
                 (f"{kind}-v1", kind))


def test_shipped_catalogue_does_not_ingest_the_demo_snapshot(settings: Settings,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.delenv("ECODEMO_SENSORS_DIR", raising=False)
    cat = load_catalogue()
    names = pipeline.sources(settings)
    assert names == [n for n in cat.enabled_sources() if cat.sources[n].connector != "mqtt"]
    assert "drop" in names
    assert not [n for n in names if cat.sources[n].connector == "snapshot"]
    assert cat.sources["bundled-snapshot"].connector == "snapshot"   # there, disabled


def test_snapshot_source_is_listed_and_ingested_once(settings: Settings, demo_catalogue: Path,
                                                     conn: psycopg.Connection) -> None:
    assert pipeline.sources(settings) == ["snapshot"]
    start, end = NOW - timedelta(hours=1), NOW
    first = pipeline.ingest(settings, "snapshot", start, end)
    n = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
    assert first["inserted"] == n > 10_000
    assert first["interval_start"] == start.isoformat()
    second = pipeline.ingest(settings, "snapshot", start, end)
    assert "already ingested" in second["skipped"]
    assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == n
    runs = conn.execute("SELECT details->>'source', status FROM compute_runs "
                        "WHERE stage = 'ingest' ORDER BY started_at").fetchall()
    assert runs == [("snapshot", "ok"), ("snapshot", "ok")]   # both measured, as ingest runs


def test_kinds_with_readings_and_models(settings: Settings, conn: psycopg.Connection,
                                        ingested: dict) -> None:
    assert kinds_with_readings(conn) == ["bike", "solar", "traffic", "wind"]
    assert kinds_with_promoted_model(conn) == []
    _add_model(conn, "wind")
    assert pipeline.kinds(settings, with_model=True) == ["wind"]


def test_training_due_forced_first_time_and_on_enough_new_data(conn: psycopg.Connection,
                                                               ingested: dict) -> None:
    forced = kinds_due_for_training(conn, force=True)
    assert {d["kind"] for d in forced if d["due"]} == {"bike", "solar", "traffic", "wind"}
    first = {d["kind"]: d for d in kinds_due_for_training(conn, force=False)}
    assert all(d["due"] and d["reason"] == "no model yet" for d in first.values())

    _add_model(conn, "bike", "now() + interval '1 minute'")   # trained after every ingestion
    bike = {d["kind"]: d for d in kinds_due_for_training(conn, force=False)}["bike"]
    assert not bike["due"] and bike["new_readings"] == 0
    # 10 % of the bike readings arrive (or are corrected) after the model: due again.
    conn.execute("""UPDATE readings SET ingested_at = now() + interval '2 minutes'
                    WHERE sensor_id IN (SELECT sensor_id FROM sensors WHERE kind = 'bike')
                      AND (extract(epoch FROM ts) / 3600)::bigint % 10 = 0""")
    bike = {d["kind"]: d for d in kinds_due_for_training(conn, force=False)}["bike"]
    assert bike["due"] and 0.05 < bike["new_readings"] / bike["readings"] < 0.2


def _intensity(conn: psycopg.Connection, values: list[float], end: datetime) -> None:
    """Hourly values ending at ``end`` (last value = latest)."""
    rows = [("FR", end - timedelta(hours=len(values) - 1 - i), v, "test")
            for i, v in enumerate(values)]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO grid_intensity (zone, ts, g_per_kwh, source) "
                        "VALUES (%s, %s, %s, %s)", rows)


def test_low_carbon_window_without_data_does_not_wait(conn: psycopg.Connection) -> None:
    d = low_carbon_window(conn, now=NOW, deadline=NOW + timedelta(hours=6))
    assert d.proceed and "cannot tell" in d.reason
    _intensity(conn, [40.0, 90.0], NOW - timedelta(hours=5))       # stale: says nothing now
    assert low_carbon_window(conn, now=NOW, deadline=NOW + timedelta(hours=6)).proceed


def test_low_carbon_window_waits_for_a_clean_hour_until_the_deadline(
        conn: psycopg.Connection) -> None:
    week = [float(40 + (i % 24) * 3) for i in range(24 * 7)]      # 40..109 g/kWh, daily cycle
    _intensity(conn, [*week, 100.0], NOW)                          # latest: a dirty hour
    deadline = NOW + timedelta(hours=6)
    waiting = low_carbon_window(conn, now=NOW, deadline=deadline)
    assert not waiting.proceed and waiting.latest_g_per_kwh == 100.0
    assert waiting.threshold_g_per_kwh is not None and waiting.threshold_g_per_kwh < 100.0
    late = low_carbon_window(conn, now=deadline, deadline=deadline)
    # At the deadline the latest value is 6 h old: it proceeds either way, never waits longer.
    assert late.proceed


def test_low_carbon_window_proceeds_in_a_clean_hour(conn: psycopg.Connection) -> None:
    week = [float(40 + (i % 24) * 3) for i in range(24 * 7)]
    _intensity(conn, [*week, 45.0], NOW)
    d = low_carbon_window(conn, now=NOW, deadline=NOW + timedelta(hours=6))
    assert d.proceed and "cleanest" in d.reason
    conn.execute("UPDATE grid_intensity SET g_per_kwh = %s WHERE ts = %s",
                 (ABSOLUTE_LOW_G_PER_KWH - 1, NOW))
    assert "below" in low_carbon_window(conn, now=NOW, deadline=NOW).reason


def test_deadline_reached_with_fresh_dirty_data(conn: psycopg.Connection) -> None:
    week = [float(40 + (i % 24) * 3) for i in range(24 * 7)]
    _intensity(conn, [*week, 100.0], NOW)
    d = low_carbon_window(conn, now=NOW, deadline=NOW - timedelta(minutes=1))
    assert d.proceed and "deadline" in d.reason


def test_forecast_issue_time_follows_the_data(settings: Settings, ingested: dict) -> None:
    future = datetime(2030, 1, 1, tzinfo=UTC)
    # The bundled wind series ends 2013-12-31T22:30Z: issued from the last whole hour of data.
    assert pipeline.issue_time(settings, "wind", future) == datetime(2013, 12, 31, 22,
                                                                     tzinfo=UTC)
    inside = datetime(2013, 6, 1, 12, tzinfo=UTC)
    assert pipeline.issue_time(settings, "wind", inside) == inside


def test_publish_skips_without_grafana(settings: Settings) -> None:
    assert not pipeline.grafana_configured(settings)
    assert "ECODEMO_GRAFANA_URL" in pipeline.publish(settings)["skipped"]
