"""Stage functions for the sensors: what Airflow tasks and the CLI call.

Each takes an explicit :class:`Settings`, opens the store (applying migrations), registers the
catalogue (idempotent) and returns a plain JSON-able dict.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from ecodemo.config import Settings
from ecodemo.errors import ConfigError, EcodemoError
from ecodemo.metering import track_run
from ecodemo.sensors.catalogue import Catalogue, load_catalogue, register_catalogue
from ecodemo.store import migrate
from ecodemo.store.connection import open_database

log = logging.getLogger(__name__)
Echo = Callable[[str], Any]


def _tracked(settings: Settings, stage: str, source: str) -> AbstractContextManager[Any]:
    """Energy tracking of the run (a ``compute_runs`` row naming the source)."""
    return track_run(settings, stage=stage, details={"source": source})


@contextmanager
def _store(settings: Settings) -> Iterator[psycopg.Connection]:
    db = open_database(settings)
    migrate.upgrade(db.url)
    conn = db.connect(autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


def catalogue(path: Path | None = None) -> Catalogue:
    return load_catalogue(path)


def register(settings: Settings, catalogue_path: Path | None = None) -> dict[str, Any]:
    """Validate the catalogue and write its sites and sensors."""
    cat = load_catalogue(catalogue_path)
    with _store(settings) as conn:
        return {"catalogue": str(cat.path), **register_catalogue(conn, cat)}


def _run_connector(settings: Settings, conn: psycopg.Connection, cat: Catalogue, name: str,
                   start: datetime | None, end: datetime | None) -> dict[str, Any]:
    spec = cat.source(name)
    if spec.connector == "opendatasoft":
        from ecodemo.sensors import opendatasoft
        return opendatasoft.ingest(conn, cat, name, start=start, end=end)
    if spec.connector == "open_meteo":
        from ecodemo.sensors import open_meteo
        return open_meteo.ingest(conn, cat, name, start=start, end=end)
    if spec.connector == "files":
        from ecodemo.sensors import files
        return files.ingest(conn, cat, name, batch_rows=settings.ingest_batch_rows)
    if spec.connector == "simulator":
        from ecodemo.sensors import simulator
        return simulator.ingest(conn, cat, name, start=start, end=end)
    if spec.connector == "snapshot":
        from ecodemo.sensors.snapshot import ingest_snapshot_once
        return ingest_snapshot_once(settings)
    raise ConfigError(f"{name}: {spec.connector} sources run as a subscriber "
                      "(`ecodemo ingest mqtt`), not as a one-shot ingestion")


def ingest_source(settings: Settings, name: str, start: datetime | None = None,
                  end: datetime | None = None, *, catalogue_path: Path | None = None,
                  connector: str | None = None) -> dict[str, Any]:
    """Ingest one catalogue source (incremental unless ``start`` is given).

    ``connector`` (optional) asserts the source's connector, so ``ecodemo ingest opendatasoft
    open-meteo`` is a clear error rather than a surprise.
    """
    cat = load_catalogue(catalogue_path)
    spec = cat.source(name)
    if connector is not None and spec.connector != connector:
        raise ConfigError(f"source '{name}' uses the {spec.connector} connector, not {connector}")
    with _store(settings) as conn:
        register_catalogue(conn, cat)
        with _tracked(settings, "ingest", name):
            result = _run_connector(settings, conn, cat, name, start, end)
    result.setdefault("source", name)
    result["enabled_in_catalogue"] = spec.enabled
    return result


def backfill_weather_forecasts(settings: Settings, name: str, start: datetime | None,
                               end: datetime, *, catalogue_path: Path | None = None
                               ) -> dict[str, Any]:
    """Past weather forecasts as issued for an open_meteo source (Open-Meteo's Previous Runs
    API, :func:`ecodemo.sensors.open_meteo.backfill_forecasts`), valid from ``start``'s day
    (None: after each station's last backfilled hour) to ``end``'s day (the days in the
    datetimes' own time zone); measured as an ingest run."""
    from ecodemo.sensors import open_meteo

    cat = load_catalogue(catalogue_path)
    spec = cat.source(name)
    if spec.connector != "open_meteo":
        raise ConfigError(f"source '{name}' uses the {spec.connector} connector, not open_meteo")
    with _store(settings) as conn:
        register_catalogue(conn, cat)
        with _tracked(settings, "ingest", name):
            return open_meteo.backfill_forecasts(
                conn, cat, name, start=start.date() if start is not None else None,
                end=end.date())


def ingest_all(settings: Settings, start: datetime | None = None, end: datetime | None = None,
               *, catalogue_path: Path | None = None, echo: Echo = log.info) -> dict[str, Any]:
    """Every enabled source that has enabled sensors (MQTT subscribers excepted): one
    failing source is reported in one line and the others carry on."""
    cat = load_catalogue(catalogue_path)
    out: dict[str, Any] = {"ok": {}, "failed": {}, "skipped": {}}
    with _store(settings) as conn:
        register_catalogue(conn, cat)
        for name in cat.enabled_sources():
            if cat.sources[name].connector == "mqtt":
                out["skipped"][name] = "MQTT runs as a subscriber: `ecodemo ingest mqtt`"
                continue
            try:
                with _tracked(settings, "ingest", name):
                    out["ok"][name] = _run_connector(settings, conn, cat, name, start, end)
                echo(f"{name}: {summary_line(out['ok'][name])}")
            except EcodemoError as exc:
                out["failed"][name] = str(exc)
                why = str(exc).removeprefix(f"{name}: ")
                echo(f"{name}: FAILED: {why}")
            except psycopg.Error as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                out["failed"][name] = f"database: {first}"
                echo(f"{name}: FAILED: database: {first}")
                if conn.closed or conn.broken:
                    raise
    return out


def summary_line(res: dict[str, Any]) -> str:
    """One line for a connector result."""
    if "written" in res and "read" not in res:
        return f"{res['written']:,} row(s) written"
    if res.get("target") == "grid_intensity":
        return (f"{res['read']:,} read, {res['written']:,} written to grid_intensity, "
                f"{res['quarantined']:,} quarantined")
    parts = [f"{res.get('read', 0):,} read", f"{res.get('inserted', 0):,} inserted",
             f"{res.get('updated', 0):,} updated", f"{res.get('unchanged', 0):,} unchanged",
             f"{res.get('quarantined', 0):,} quarantined"]
    if "skipped" in res:
        parts.append(f"{res['skipped']} file(s) already processed")
    return ", ".join(parts)


def mqtt_sources(cat: Catalogue) -> list[str]:
    """The catalogue's enabled MQTT sources: what the subscriber service runs."""
    return [n for n in cat.enabled_sources() if cat.sources[n].connector == "mqtt"]


def run_mqtt(settings: Settings, name: str = "iot-gateway", *, duration_s: float | None = None,
             max_messages: int | None = None, catalogue_path: Path | None = None
             ) -> dict[str, Any]:
    """Run the MQTT subscriber of source ``name`` until the duration/message limit."""
    res = run_mqtt_sources(settings, [name], duration_s=duration_s, max_messages=max_messages,
                           catalogue_path=catalogue_path)
    return dict(res["sources"][name])


def run_mqtt_sources(settings: Settings, names: list[str] | None = None, *,
                     duration_s: float | None = None, max_messages: int | None = None,
                     catalogue_path: Path | None = None,
                     stop: threading.Event | None = None,
                     metering_window_s: float = 3600.0) -> dict[str, Any]:
    """Run the subscribers of ``names`` (default: every enabled MQTT source of the catalogue)
    side by side until ``stop`` is set or each reaches its duration/message limit; each then
    drains its buffer. Energy: one measured 'ingest' run per ``metering_window_s``. A
    subscriber that cannot reach its broker at start raises SourceError (the others are
    stopped first): under compose the service exits non-zero and restarts."""
    from ecodemo.sensors.mqtt import MqttSubscriber
    from ecodemo.sensors.params import MqttParams

    cat = load_catalogue(catalogue_path)
    if names is None:
        names = mqtt_sources(cat)
        if not names:
            raise ConfigError(f"{cat.path}: no enabled source uses the mqtt connector "
                              "(set `enabled: true` on one, or name it)")
    params: dict[str, MqttParams] = {}
    for name in names:
        spec, p = cat.source(name), cat.source_params.get(name)
        if spec.connector != "mqtt" or not isinstance(p, MqttParams):
            raise ConfigError(f"source '{name}' uses the {spec.connector} connector, not mqtt")
        params[name] = p
    db = open_database(settings)
    migrate.upgrade(db.url)
    with db.connect(autocommit=True) as conn:
        register_catalogue(conn, cat)
    subs: dict[str, MqttSubscriber] = {}
    try:
        for name, p in params.items():
            subs[name] = MqttSubscriber(p, lambda: db.connect(autocommit=True), source=name)
            subs[name].start()
            log.info("%s: subscribed to '%s' on %s:%d", name, p.topic, p.host, p.port)
    except EcodemoError:
        for started in subs.values():
            started.client.loop_stop()
            started.client.disconnect()
        raise
    results: dict[str, dict[str, Any]] = {}

    def run(name: str, sub: MqttSubscriber) -> None:
        results[name] = {"source": name, "connector": "mqtt",
                         **sub.run(duration_s=duration_s, max_messages=max_messages)}

    threads = [threading.Thread(target=run, args=item, name=f"mqtt-{item[0]}", daemon=True)
               for item in subs.items()]
    for t in threads:
        t.start()
    stop = stop or threading.Event()
    stopping = False

    def alive() -> bool:
        return any(t.is_alive() for t in threads)

    def inserted() -> int:
        return sum(sub.stats.inserted for sub in subs.values())

    # A subscriber runs for weeks: one measured 'ingest' run per window, not one at exit, so
    # its energy reaches compute_runs (and the balance) as it goes.
    first = 0
    while alive():
        with _tracked(settings, "ingest", ", ".join(subs)) as rec:  # slow the first time
            end = time.monotonic() + metering_window_s
            while alive() and time.monotonic() < end:
                if stopping:
                    time.sleep(0.2)  # the subscribers drain their buffers
                elif stop.wait(0.2):
                    stopping = True
                    for sub in subs.values():
                        sub.stop()
            if rec is not None:
                now = inserted()
                rec.details.update({"connector": "mqtt", "inserted": now - first,
                                    "window_s": metering_window_s})
                first = now
    for t in threads:
        t.join()
    return {"sources": results}


def check_sensors(settings: Settings, *, catalogue_path: Path | None = None,
                  window_days: int = 400) -> dict[str, Any]:
    """Validate the catalogue, then per sensor: last reading, gaps, quality flags (written to
    ``sensor_quality`` and the check bits of ``readings.quality_flags``)."""
    from ecodemo.sensors.quality import check_sensor_in_store

    cat = load_catalogue(catalogue_path)
    with _store(settings) as conn:
        register_catalogue(conn, cat)
        ids = [r[0] for r in conn.execute("SELECT sensor_id FROM sensors ORDER BY sensor_id")]
        sensors = [check_sensor_in_store(conn, sid, window_days=window_days) for sid in ids]
    return {"catalogue": str(cat.path), "valid": True, "sites": len(cat.sites),
            "sensors": sensors}
