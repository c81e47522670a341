"""Stage functions for the Airflow tasks (dags/): one call per task, scoped to its data interval.

Each takes an explicit Settings and returns a plain dict Airflow can pass between tasks (XCom).
They call the same area stage functions the CLI calls (``ecodemo.<area>.stages``), adding only
what a scheduled task needs: the data interval, the kinds or sources to map over, the decision
to train now. Area modules are imported inside the functions, so parsing a DAG file stays light.
The demo lives in :mod:`ecodemo.demo`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ecodemo.config import Settings
from ecodemo.store import migrate
from ecodemo.store.connection import open_database


def upgrade_db(settings: Settings) -> list[str]:
    db = open_database(settings)
    return [f"{m.version:03d}_{m.name} ({m.variant})" for m in migrate.upgrade(db.url)]


def sources(settings: Settings) -> list[str]:
    """Names of the sources the ingest DAG maps over: exactly the catalogue's enabled one-shot
    sources (``ECODEMO_SENSORS_DIR``'s catalogue.yaml; MQTT runs as a subscriber, not per
    interval). The bundled demo snapshot is among them only when the catalogue enables a
    ``snapshot`` source."""
    from ecodemo.sensors.stages import catalogue

    cat = catalogue()
    return [n for n in cat.enabled_sources() if cat.sources[n].connector != "mqtt"]


def ingest(settings: Settings, source: str, interval_start: datetime | None = None,
           interval_end: datetime | None = None, *, resume: bool = False) -> dict[str, Any]:
    """Ingest one catalogue source for its data interval (``ecodemo.sensors.stages
    .ingest_source``, measured as an "ingest" run). Idempotent.

    With ``resume`` (the scheduled hourly runs), each sensor resumes after its last stored
    reading, up to ``interval_end``: open data is often published hours or a day late, and a
    strict one-hour window would miss what arrives late for good. Without it (a rerun or a
    backfill of a given interval) exactly ``[interval_start, interval_end)`` is fetched again.
    Readings are keyed by sensor and time, so either way a rerun adds nothing. A ``snapshot``
    source has no interval: it is ingested once per content version, then skipped at once.
    """
    from ecodemo.sensors.stages import ingest_source

    details = {"source": source, "mode": "resume" if resume else "interval",
               "interval_start": interval_start.isoformat() if interval_start else None,
               "interval_end": interval_end.isoformat() if interval_end else None}
    result = ingest_source(settings, source, None if resume else interval_start, interval_end)
    return {**details, **result, "source": source}


def weather_forecast_sources(settings: Settings) -> list[str]:
    """The catalogue's enabled open_meteo sources, whose forecasts as issued the weather DAG
    keeps backfilled."""
    from ecodemo.sensors.stages import catalogue

    cat = catalogue()
    return [n for n in cat.enabled_sources() if cat.sources[n].connector == "open_meteo"]


def backfill_weather_forecasts(settings: Settings, source: str,
                               interval_start: datetime | None = None,
                               interval_end: datetime | None = None, *,
                               resume: bool = False) -> dict[str, Any]:
    """Weather forecasts as issued for one open_meteo source, valid on the days of its data
    interval (Open-Meteo's Previous Runs API; measured as an "ingest" run). Idempotent.

    The hourly ingest keeps each forecast it fetches as issued; what it did not fetch (Airflow
    down, a deployment's first weeks) is lost to the models unless backfilled. With ``resume``
    (the scheduled daily runs) each station resumes after its last backfilled hour, up to the
    interval's last day (a new station: the source's ``backfill_days``); without it (a rerun,
    an Airflow backfill) exactly the interval's days are fetched again.
    """
    from ecodemo.sensors.stages import backfill_weather_forecasts as backfill

    end = interval_end or datetime.now(UTC)
    last_instant = end - timedelta(microseconds=1)       # the interval's end is open
    start = None if resume or interval_start is None else interval_start
    details = {"source": source, "mode": "resume" if start is None else "interval",
               "interval_start": interval_start.isoformat() if interval_start else None,
               "interval_end": end.isoformat()}
    return {**details, **backfill(settings, source, start, last_instant), "source": source}


def kinds(settings: Settings, *, with_model: bool = False) -> list[str]:
    """Kinds to map over: with readings, or (``with_model``) with a promoted model."""
    from ecodemo.scheduling import kinds_with_promoted_model
    from ecodemo.store.kinds import kinds_with_readings

    with open_database(settings).connect() as conn:
        return kinds_with_promoted_model(conn) if with_model else kinds_with_readings(conn)


def kinds_due_for_training(settings: Settings, *, force: bool) -> list[dict[str, Any]]:
    """Per kind with readings: whether training is due (see ecodemo.scheduling)."""
    from ecodemo.scheduling import kinds_due_for_training as due

    with open_database(settings).connect() as conn:
        return due(conn, force=force)


def low_carbon_window(settings: Settings, deadline: datetime,
                      now: datetime | None = None) -> dict[str, Any]:
    """Is now a low-carbon moment to train (or is the deadline reached)? See ecodemo.scheduling.

    Uses the grid intensity collected for ``settings.grid_zone`` (ECODEMO_GRID_ZONE).
    """
    from ecodemo.scheduling import low_carbon_window as decide

    with open_database(settings).connect() as conn:
        return decide(conn, now=now or datetime.now(UTC), deadline=deadline,
                      zone=settings.grid_zone).as_dict()


def run_ladder(settings: Settings, kind: str) -> dict[str, Any]:
    """Backtest the model ladder for one kind and record the choice (measured)."""
    from ecodemo.models.stages import run_ladder as ladder

    result = ladder(settings, kind)
    return {"kind": kind, **result}


def train(settings: Settings, kind: str) -> dict[str, Any]:
    """Train the chosen model for one kind, register and promote it (measured)."""
    from ecodemo.models.stages import train as fit

    result = fit(settings, kind, promote=True)
    return {"kind": kind, **result}


def forecast(settings: Settings, kind: str, issued_at: datetime | None = None,
             horizon_h: int = 48) -> dict[str, Any]:
    """Forecast the next ``horizon_h`` hours for one kind with its promoted model (measured).

    ``issued_at`` (normally the end of the task's data interval) is moved back to the kind's
    latest reading, floored to the hour, when the data stops earlier (a late feed, or the
    historical bundled snapshot): a forecast is issued from what was known, never from a future
    it did not see. The same interval therefore always gives the same forecast keys: reruns
    overwrite, they do not add rows. ``None`` (an Airflow 3 manual run has no data interval)
    means the current hour.
    """
    if issued_at is None:
        issued_at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    effective = issue_time(settings, kind, issued_at)
    from ecodemo.models.stages import forecast as predict

    result = predict(settings, kind, issued_at=effective, horizon_h=horizon_h)
    return {"kind": kind, "requested_issued_at": issued_at.isoformat(),
            "issued_at": effective.isoformat(), **result}


def issue_time(settings: Settings, kind: str, requested: datetime) -> datetime:
    """``requested``, or the kind's latest reading (floored to the hour) when data stops earlier."""
    with open_database(settings).connect() as conn:
        row = conn.execute(
            """SELECT max(r.ts) FROM readings r JOIN sensors s USING (sensor_id)
               WHERE s.kind = %s AND s.enabled AND r.ts <= %s""", (kind, requested)
        ).fetchone()
    latest = row[0] if row else None
    if latest is None or latest >= requested:
        return requested
    return latest.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def evaluate(settings: Settings, start: datetime | None = None,
             end: datetime | None = None) -> dict[str, Any]:
    """Accuracy of the forecasts as issued and benefit versus cost over ``[start, end)``."""
    from ecodemo.energy.stages import evaluate as run_evaluation

    result = run_evaluation(settings, period_start=start, period_end=end)
    return {"period_start": start.isoformat() if start else None,
            "period_end": end.isoformat() if end else None, **result}


def grafana_configured(settings: Settings) -> bool:
    """True when publishing has somewhere to go: a provisioned folder Grafana reads
    (ECODEMO_GRAFANA_DASHBOARDS_DIR, as under docker compose) or a URL (ECODEMO_GRAFANA_URL)."""
    return bool(settings.grafana_dashboards_dir or settings.grafana_url)


def publish(settings: Settings) -> dict[str, Any]:
    """Dashboards to Grafana (files it provisions, or its HTTP API with annotations);
    ``{"skipped": ...}`` when neither is set."""
    if not grafana_configured(settings):
        return {"skipped": "neither ECODEMO_GRAFANA_DASHBOARDS_DIR nor ECODEMO_GRAFANA_URL "
                           "is set"}
    from ecodemo.dashboards.stages import publish as push

    result: dict[str, Any] = push(settings)
    return result


def store_summary(settings: Settings) -> list[dict[str, Any]]:
    """Per kind: sensors, readings and time span held in the store."""
    db = open_database(settings)
    with db.connect() as conn:
        rows = conn.execute(
            """SELECT s.kind, count(DISTINCT s.sensor_id), count(r.*), min(r.ts), max(r.ts)
               FROM sensors s LEFT JOIN readings r USING (sensor_id)
               GROUP BY s.kind ORDER BY s.kind"""
        ).fetchall()
    return [
        {"kind": k, "sensors": n_s, "readings": n_r,
         "first": a.isoformat() if a else None, "last": b.isoformat() if b else None}
        for k, n_s, n_r, a, b in rows
    ]
