"""``ecodemo demo``: the whole pipeline on the bundled real snapshot, in-process.

Demo data stays here: the snapshot is ingested by this module (or by a catalogue that enables
the ``snapshot`` connector), never by a deployment's own schedule.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecodemo.config import Settings
from ecodemo.energy.summary import closing_line, target_balance
from ecodemo.sensors.snapshot import Echo, ingest_snapshot
from ecodemo.store.connection import open_database

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


def _check_quality(settings: Settings) -> int:
    """Data-quality checks of every stored sensor (flags on readings, the per-sensor summary),
    measured as an 'ingest' run; returns how many sensors were checked."""
    from ecodemo.metering import track_run
    from ecodemo.sensors.quality import check_sensor_in_store

    with open_database(settings).connect(autocommit=True) as conn, \
            track_run(settings, "ingest", details={"step": "quality checks"}):
        ids = [r[0] for r in conn.execute("SELECT sensor_id FROM sensors ORDER BY sensor_id")]
        return len([check_sensor_in_store(conn, sid, window_days=400) for sid in ids])


def _target_summary(settings: Settings, kind: str, ladder: dict[str, Any],
                    trained: dict[str, Any], forecast: dict[str, Any]) -> dict[str, Any]:
    """One entry of summary.json ``targets``, from the ladder result, the 48 h forecast and the
    stored balance."""
    chosen: dict[str, Any] = next(
        (m for m in ladder["models"] if m["name"] == ladder["chosen"]), {})
    db = open_database(settings)
    with db.connect() as conn:
        # the balance's figures, with counterfactual, ranges and saved/shifted (energy.summary);
        # it covers the model whose forecasts were scored as issued (the replayed candidate)
        # unless the promoted one has live accuracy itself: balance_model_id says which
        bal = target_balance(conn, kind, trained["model_id"])
        methods = [r[0] for r in conn.execute(
            """SELECT DISTINCT measurement_method FROM compute_runs
               WHERE (sensor_kind = %s OR sensor_kind IS NULL) AND measurement_method IS NOT NULL
               ORDER BY 1""", (kind,)).fetchall()]
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
        # solar nights are scored apart (their band is the night level)
        "coverage_night": chosen.get("coverage_night"),
        "coverage_by_lead_h": chosen.get("coverage_by_lead_h"),
        # issued at local noon for the next local day (leads 12-36 h)
        "day_ahead": chosen.get("day_ahead"),
        # where the choice was made (selection origins) and tested (test origins)
        "backtest_protocol": ladder.get("protocol"),
        "selection": chosen.get("selection"),
        # forecast_as_issued | observed_standing_in | none: the backtest's weather, and the
        # 48 h forecast's (never observed weather for the future)
        "weather": {"backtest": (ladder.get("weather") or {}).get("provenance", "none"),
                    "forecast": (forecast.get("weather") or {}).get("provenance", "none")},
        **bal,
        "compute": {**bal["compute"], "method": "; ".join(methods) or None},
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
    ingested = ingest_snapshot(settings, echo, measure=True)
    ingested["sensors_checked"] = _check_quality(settings)
    kinds = models.kinds_with_data(settings)

    echo(f"2/{DEMO_STEPS} model ladder per kind: baselines, small and large LightGBM, chosen "
         "on forecasts issued before the test, tested on daily noon forecasts (1-24 h and the "
         "next day)")
    ladders: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        ladders[kind] = models.run_ladder(settings, kind, horizon_h=24)
        c = next(m for m in ladders[kind]["models"] if m["name"] == ladders[kind]["chosen"])
        skill = c.get("skill_vs_seasonal_naive")
        ahead = (c.get("day_ahead") or {}).get("skill_vs_seasonal_naive")
        echo(f"  {kind}: chose {ladders[kind]['chosen']}"
             + (f" (skill vs seasonal naive {skill:.2f} at 1-24 h" if skill is not None else " (")
             + (f", {ahead:.2f} day-ahead" if ahead is not None else "")
             + f"; weather: {ladders[kind]['weather']['provenance']})"
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
    forecasts = {}
    for kind in kinds:
        f = forecasts[kind] = models.forecast(settings, kind, horizon_h=48)
        echo(f"  {kind}: {f['rows']:,} forecast rows issued at {f['issued_at']} "
             f"(weather: {f['weather']['provenance']})")

    echo(f"6/{DEMO_STEPS} evaluating: accuracy as issued and benefit against compute cost")
    evaluation = energy.evaluate(settings)

    echo(f"7/{DEMO_STEPS} writing dashboards and the HTML report")
    dash = dashboards.build(workdir / "dashboards")
    report = write_html_report(settings, workdir / "report.html")

    targets = [_target_summary(settings, k, ladders[k], trained[k], forecasts[k])
               for k in kinds]
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
        echo(closing_line(t))
    echo(f"done in {summary['duration_s']} s: {workdir / 'report.html'}, "
         f"{workdir / 'dashboards'}/, {workdir / 'summary.json'}")
    return workdir
