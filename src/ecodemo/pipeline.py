"""Stage functions: what DAG tasks and CLI commands call. Each takes an explicit Settings.

Keep these thin: they open the store, call the library, and return plain dicts that Airflow can
pass between tasks (XCom) and the CLI can print.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecodemo.config import Settings
from ecodemo.errors import ConfigError
from ecodemo.snapshot import SERIES_FILES, SITES_FILE, WEATHER_FILE, snapshot_dir
from ecodemo.store import migrate
from ecodemo.store.connection import open_database
from ecodemo.store.ingest import IngestCounts, ingest_csv
from ecodemo.store.sites import register_sites_csv
from ecodemo.store.weather import ingest_weather_csv

log = logging.getLogger(__name__)
Echo = Callable[[str], Any]


def upgrade_db(settings: Settings) -> list[str]:
    db = open_database(settings)
    return [f"{m.version:03d}_{m.name} ({m.variant})" for m in migrate.upgrade(db.url)]


def ingest_snapshot(settings: Settings, echo: Echo = log.info, *, measure: bool = False,
                    check_quality: bool = False) -> dict[str, Any]:
    """Register the bundled sites and ingest the bundled series and weather (idempotent).

    With ``measure``, each file is one 'ingest' compute run (a file feeding one kind is charged
    to it; a shared file is split by the balance). With ``check_quality``, the data-quality
    checks run afterwards (flags on readings, the per-sensor summary), also measured.
    """
    from contextlib import nullcontext

    from ecodemo.metering import track_run

    def measured(**kw: Any) -> Any:
        return track_run(settings, "ingest", **kw) if measure else nullcontext(None)

    db = open_database(settings)
    migrate.upgrade(db.url)
    folder = snapshot_dir()
    total = IngestCounts()
    out: dict[str, Any] = {}
    with db.connect(autocommit=True) as conn:
        out["sites"] = register_sites_csv(conn, folder / SITES_FILE)
        kind_of: dict[str, str] = dict(
            conn.execute("SELECT sensor_id, kind FROM sensors").fetchall())
        for name in SERIES_FILES:
            kinds = _kinds_in_file(folder / name, kind_of) if measure else []
            with measured(sensor_kind=kinds[0] if len(kinds) == 1 else None,
                          details={"file": name, "kinds": kinds}) as run:
                counts = ingest_csv(conn, folder / name, batch_rows=settings.ingest_batch_rows)
                if run is not None:
                    run.details.update(counts.as_dict())
            echo(f"  {name}: {counts.summary()}")
            total.add(counts)
        with measured(details={"file": WEATHER_FILE}):
            out["weather_rows_changed"] = ingest_weather_csv(conn, folder / WEATHER_FILE)
        if check_quality:
            from ecodemo.sensors.quality import check_sensor_in_store

            with measured(details={"step": "quality checks"}):
                out["sensors_checked"] = len([check_sensor_in_store(conn, sid, window_days=400)
                                              for sid in sorted(kind_of)])
    return {**out, **total.as_dict()}


# --- stage functions implemented in the area packages (imported lazily: DAG files stay light) ---
# Contract (each takes an explicit Settings and returns a JSON-able dict):
#   ecodemo.sensors.stages.ingest_source(settings, name, start=None, end=None)
#   ecodemo.sensors.stages.ingest_all(settings) / list_sources(settings) / check_sensors(settings)
#   ecodemo.models.stages.run_ladder(settings, kind, horizon_h=24)   backtest + choice (tracked)
#   ecodemo.models.stages.train(settings, kind, promote=True)         registry (tracked)
#   ecodemo.models.stages.forecast(settings, kind, issued_at=None, horizon_h=48)   (tracked)
#   ecodemo.models.stages.kinds_with_data(settings) -> list[str]
#   ecodemo.energy.stages.evaluate(settings, period_start=None, period_end=None)   (tracked)
#   ecodemo.dashboards.stages.publish(settings, out_dir=None)
#
# The wrappers below are what the Airflow tasks (dags/) call: one call per task, with the
# task's data interval passed explicitly so each run is scoped to it and can be rerun safely.

SNAPSHOT_SOURCE = "snapshot"  # the bundled real data: what the tests and the demo ingest


def _stage(module: str, name: str) -> Callable[..., Any]:
    """``ecodemo.<module>.stages.<name>``, imported on first use (keeps DAG parsing light)."""
    from importlib import import_module

    try:
        mod = import_module(f"ecodemo.{module}.stages")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(f"ecodemo.{module}"):
            raise ConfigError(f"stage ecodemo.{module}.stages.{name} is not available "
                              f"in this installation") from exc
        raise
    func: Callable[..., Any] = getattr(mod, name)
    return func


def _has_stages(module: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(f"ecodemo.{module}.stages") is not None
    except ModuleNotFoundError:
        return False


def sources(settings: Settings) -> list[str]:
    """Names of the sources the ingest DAG maps over: the catalogue's enabled one-shot sources
    (MQTT runs as a subscriber, not per interval), plus the bundled snapshot."""
    names: list[str] = []
    if _has_stages("sensors"):
        from importlib import import_module

        stages = import_module("ecodemo.sensors.stages")
        if hasattr(stages, "list_sources"):
            for item in stages.list_sources(settings):
                if isinstance(item, str):
                    names.append(item)
                elif item.get("enabled", True):
                    names.append(str(item["name"]))
        else:
            cat = stages.catalogue()
            names = [n for n in cat.enabled_sources()
                     if getattr(cat.sources[n], "connector", None) != "mqtt"]
    if SNAPSHOT_SOURCE not in names:
        names.append(SNAPSHOT_SOURCE)
    return names


def ingest(settings: Settings, source: str, interval_start: datetime | None = None,
           interval_end: datetime | None = None, *, resume: bool = False) -> dict[str, Any]:
    """Ingest one source for its data interval; measured as an "ingest" run. Idempotent.

    Catalogue sources go to ``ecodemo.sensors.stages.ingest_source`` (which measures its own
    run). With ``resume`` (the scheduled hourly runs), each sensor resumes after its last stored
    reading, up to ``interval_end``: open data is often published hours or a day late, and a
    strict one-hour window would miss what arrives late for good. Without it (a rerun or a
    backfill of a given interval) exactly ``[interval_start, interval_end)`` is fetched again.
    Readings are keyed by sensor and time, so either way a rerun adds nothing.

    The bundled snapshot has no interval: it is ingested once per content version (a
    fingerprint in ``ingested_files``), so the hourly DAG does not re-read it every hour; later
    runs return ``{"skipped": ...}`` at once (still measured: the check itself costs a little).
    """
    start = None if resume else interval_start
    details = {"source": source, "mode": "resume" if resume else "interval",
               "interval_start": interval_start.isoformat() if interval_start else None,
               "interval_end": interval_end.isoformat() if interval_end else None}
    if source != SNAPSHOT_SOURCE:
        result = _stage("sensors", "ingest_source")(settings, source, start, interval_end)
        return {**details, **result, "source": source}
    from ecodemo.metering import track_run

    with track_run(settings, "ingest", details=details) as run:
        result = _ingest_snapshot_once(settings)
        run.details.update({k: v for k, v in result.items() if isinstance(v, int | str)})
    return {**details, **result, "run_id": run.run_id, "energy_kwh": run.energy_kwh}


def _ingest_snapshot_once(settings: Settings) -> dict[str, Any]:
    from ecodemo.scheduling import folder_fingerprint

    folder = snapshot_dir()
    files = [SITES_FILE, WEATHER_FILE, *SERIES_FILES]
    fingerprint = folder_fingerprint(folder, files)
    db = open_database(settings)
    migrate.upgrade(db.url)
    with db.connect(autocommit=True) as conn:
        done = conn.execute("SELECT ingested_at FROM ingested_files WHERE content_sha256 = %s",
                            (fingerprint,)).fetchone()
    if done is not None:
        return {"skipped": f"bundled snapshot {fingerprint[:12]} already ingested "
                           f"at {done[0].isoformat()}"}
    counts = ingest_snapshot(settings)
    with db.connect(autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingested_files (content_sha256, path, counts) VALUES (%s, %s, %s::jsonb)"
            " ON CONFLICT (content_sha256) DO NOTHING",
            (fingerprint, f"bundled snapshot {folder}", json.dumps(counts, default=str)),
        )
    return counts


def kinds(settings: Settings, *, with_model: bool = False) -> list[str]:
    """Kinds to map over: with readings, or (``with_model``) with a promoted model."""
    from ecodemo.scheduling import kinds_with_promoted_model, kinds_with_readings

    if not with_model and _has_stages("models"):
        return list(_stage("models", "kinds_with_data")(settings))
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
    result = _stage("models", "run_ladder")(settings, kind)
    return {"kind": kind, **result}


def train(settings: Settings, kind: str) -> dict[str, Any]:
    """Train the chosen model for one kind, register and promote it (measured)."""
    result = _stage("models", "train")(settings, kind, promote=True)
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
    result = _stage("models", "forecast")(settings, kind, issued_at=effective,
                                          horizon_h=horizon_h)
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
    result = _stage("energy", "evaluate")(settings, period_start=start, period_end=end)
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
    result: dict[str, Any] = _stage("dashboards", "publish")(settings)
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


DEMO_STEPS = 7
#: Days of past operation the demo replays so live accuracy (forecasts as issued against what
#: happened) exists on historical data.
REPLAY_DAYS = 7


def _replay(settings: Settings, kind: str, days: int) -> int:
    """Issue daily 24 h forecasts over the last ``days`` days with the ladder's candidate
    (backtested, hence fitted, at the ladder's 24 h horizon).

    The candidate was trained only on data before the backtest window (the last weeks), so
    these past forecasts use nothing they could not have known; each issue reads only readings
    up to its issue time. The candidate is promoted for the replay (as it would have been in
    production) and superseded by the model ``train`` fits on all data.
    """
    from datetime import timedelta

    from ecodemo.models import registry
    from ecodemo.models import stages as models

    db = open_database(settings)
    with db.connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT model_id FROM model_choices WHERE kind = %s AND model_id IS NOT NULL "
            "ORDER BY decided_at DESC LIMIT 1", (kind,)).fetchone()
        last = conn.execute("SELECT max(r.ts) FROM readings r JOIN sensors s USING (sensor_id) "
                            "WHERE s.kind = %s", (kind,)).fetchone()
        if row is None or last is None or last[0] is None:
            return 0
        registry.promote(conn, row[0])
    end_day = last[0].replace(hour=0, minute=0, second=0, microsecond=0)
    n = 0
    for d in range(days, 0, -1):
        n += int(models.forecast(settings, kind, issued_at=end_day - timedelta(days=d),
                                 horizon_h=24)["rows"])
    return n


def _kinds_in_file(path: Path, kind_of: dict[str, str]) -> list[str]:
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    ids = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        include_columns=["site_id"])).column("site_id")
    return sorted({kind_of[s] for s in pc.unique(ids).to_pylist() if s in kind_of})


def _ml_phrase(inc: dict[str, Any] | None) -> str:
    """', of which machine learning adds ...' for the demo's closing lines."""
    if not inc:
        return ""
    if not inc.get("is_machine_learning"):
        return f" (a no-AI forecast, {inc.get('model_name')}: no machine learning needed)"
    kwh, share = inc.get("avoided_kwh"), inc.get("share")
    if kwh is None or share is None:
        return ""
    return (f", of which {kwh:,.1f} kWh ({share:.0%}) needs machine learning "
            f"(best no-AI forecast: {inc.get('baseline')})")


def _target_summary(settings: Settings, kind: str, ladder: dict[str, Any],
                    trained: dict[str, Any]) -> dict[str, Any]:
    """One entry of summary.json ``targets``, from the ladder result and the stored balance."""
    chosen: dict[str, Any] = next(
        (m for m in ladder["models"] if m["name"] == ladder["chosen"]), {})
    db = open_database(settings)
    with db.connect() as conn:
        bal = conn.execute(
            """SELECT ingest_kwh, train_kwh, predict_kwh, compute_kwh, compute_kgco2e,
                      avoided_kwh, avoided_kgco2e, net_kgco2e, payback_hours, assumptions, method
                      , model_id
               FROM balances WHERE kind = %s
               ORDER BY evaluated_at DESC, (model_id = %s) DESC LIMIT 1""",
            (kind, trained["model_id"]),
        ).fetchone()
        methods = [r[0] for r in conn.execute(
            """SELECT DISTINCT measurement_method FROM compute_runs
               WHERE (sensor_kind = %s OR sensor_kind IS NULL) AND measurement_method IS NOT NULL
               ORDER BY 1""", (kind,)).fetchall()]
    (ingest_kwh, train_kwh, predict_kwh, total_kwh, total_kg, avoided_kwh, avoided_kg, net_kg,
     payback_h, assumptions, balance_method, balance_model) = bal if bal else (None,) * 12
    return {
        "kind": kind,
        "sensors": ladder["sensors"],
        "chosen_model": ladder["chosen"],
        "model_id": trained["model_id"],
        "chosen_reason": ladder["reason"],
        # The ladder may pick a no-AI baseline when no LightGBM rung beats it: say so.
        "chosen_is_machine_learning": not str(ladder["chosen"]).startswith(
            ("persistence", "seasonal_naive", "climatology")),
        "skill_vs_seasonal_naive": chosen.get("skill_vs_seasonal_naive"),
        "nmae": chosen.get("nmae"),
        "coverage_p10_p90": chosen.get("coverage_p10_p90"),
        "compute": {"ingest_kwh": ingest_kwh, "train_kwh": train_kwh,
                    "predict_kwh": predict_kwh, "total_kwh": total_kwh,
                    "total_kgco2e": total_kg, "method": "; ".join(methods) or None},
        "benefit": {"avoided_kwh": avoided_kwh, "avoided_kgco2e": avoided_kg,
                    # the part of it no no-AI forecast would give (see energy.improvement)
                    "machine_learning_increment": (assumptions or {}).get(
                        "machine_learning_increment"),
                    "assumptions": assumptions},
        "net_kgco2e": net_kg,
        "payback_hours": payback_h,
        # The balance covers the model whose forecasts were scored as issued (the replayed
        # candidate) unless the promoted one has live accuracy itself.
        "balance_model_id": balance_model,
        "balance_method": balance_method,
    }


def run_demo(settings: Settings, workdir: Path, echo: Echo = print) -> Path:
    """The main job: the whole pipeline on the bundled real snapshot, on the embedded database
    unless ``ECODEMO_DATABASE_URL`` is set. Safe to rerun in the same directory."""
    import time

    from ecodemo.dashboards import stages as dashboards
    from ecodemo.dashboards.report import write_html_report
    from ecodemo.energy import stages as energy
    from ecodemo.metering import warm_up
    from ecodemo.models import stages as models

    t0 = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    db = open_database(settings)
    echo(f"database: {db.label}")
    warm_up(settings)

    echo(f"1/{DEMO_STEPS} ingesting the bundled real snapshot (measured with CodeCarbon)")
    ingested = ingest_snapshot(settings, echo, measure=True, check_quality=True)
    kinds = models.kinds_with_data(settings)

    echo(f"2/{DEMO_STEPS} model ladder per kind: baselines, small and large LightGBM, "
         "24 h rolling-origin backtest")
    ladders: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        ladders[kind] = models.run_ladder(settings, kind, horizon_h=24)
        c = next(m for m in ladders[kind]["models"] if m["name"] == ladders[kind]["chosen"])
        skill = c.get("skill_vs_seasonal_naive")
        echo(f"  {kind}: chose {ladders[kind]['chosen']}"
             + (f" (skill vs seasonal naive {skill:.2f})" if skill is not None else "")
             + f": {ladders[kind]['reason']}")

    echo(f"3/{DEMO_STEPS} replaying the last {REPLAY_DAYS} days of operation: daily 24 h "
         "forecasts by the ladder's choice, trained only on data before them")
    for kind in kinds:
        n = _replay(settings, kind, REPLAY_DAYS)
        echo(f"  {kind}: {n:,} forecast rows issued in the past, kept as issued")

    echo(f"4/{DEMO_STEPS} training the chosen model per kind on all data, promoting it")
    trained = {kind: models.train(settings, kind, promote=True) for kind in kinds}
    for kind, t in trained.items():
        kwh = t.get("train_energy_kwh")
        echo(f"  {kind}: {t['model_id']} in {t['train_seconds']:.1f} s"
             + (f", {kwh * 1000:.3f} Wh (estimated)" if kwh is not None else ", energy n/a"))

    echo(f"5/{DEMO_STEPS} forecasting the next 48 h from each kind's last reading")
    for kind in kinds:
        f = models.forecast(settings, kind, horizon_h=48)
        echo(f"  {kind}: {f['rows']:,} forecast rows issued at {f['issued_at']}")

    echo(f"6/{DEMO_STEPS} evaluating: accuracy as issued and benefit against compute cost")
    evaluation = energy.evaluate(settings)

    echo(f"7/{DEMO_STEPS} writing dashboards and the HTML report")
    dash = dashboards.build(workdir / "dashboards")
    report = write_html_report(settings, workdir / "report.html")

    targets = [_target_summary(settings, k, ladders[k], trained[k]) for k in kinds]
    summary: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": db.label,
        "duration_s": round(time.perf_counter() - t0, 1),
        "energy_measurement": "CodeCarbon offline tracker, process mode; on machines without "
                              "RAPL counters CPU power is estimated from load x TDP and RAM "
                              "power is a constant: figures are estimates",
        "ingested": ingested,
        "targets": targets,
        "balance_period": evaluation.get("balance_period"),
        "benefit_model": evaluation.get("benefit_model"),
        "dashboards": dash,
        "report": str(report),
    }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2, default=str),
                                          encoding="utf-8")
    for t in targets:
        net = t["net_kgco2e"]
        spent, avoided = t["compute"]["total_kwh"], t["benefit"]["avoided_kwh"]
        echo(f"  {t['kind']}: compute "
             + (f"{spent * 1000:.3f} Wh" if spent is not None else "n/a (not measured)")
             + ", avoided " + (f"{avoided:,.1f} kWh" if avoided is not None else "n/a")
             + ", net " + (f"{net:+,.2f} kgCO2e" if net is not None else "n/a")
             + _ml_phrase(t["benefit"]["machine_learning_increment"])
             + " (estimates; assumptions in summary.json)")
    echo(f"done in {summary['duration_s']} s: {workdir / 'report.html'}, "
         f"{workdir / 'dashboards'}/, {workdir / 'summary.json'}")
    return workdir
