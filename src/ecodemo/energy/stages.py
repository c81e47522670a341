"""Stage functions of the energy area (called by Airflow tasks and the CLI).

``evaluate``: grid-intensity recomputation of compute runs, live accuracy of past forecasts
(``evaluations``, source 'live'), then the benefit-versus-cost balance per kind and model
(``balances``). It is itself a measured run (stage 'evaluate').
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ecodemo.config import Settings
from ecodemo.energy import accuracy, balance, benefit, improvement
from ecodemo.energy.grid import recompute_grid_emissions
from ecodemo.errors import InputError
from ecodemo.metering import track_run
from ecodemo.store import migrate
from ecodemo.store.connection import open_database

log = logging.getLogger(__name__)


def default_period(days: float, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The accounting period ending at the next whole hour (so reruns within the hour upsert)."""
    now = now or datetime.now(UTC)
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return end - timedelta(days=days), end


def evaluate(settings: Settings, period_start: datetime | None = None,
             period_end: datetime | None = None,
             benefit_model_path: Path | None = None) -> dict[str, Any]:
    """Evaluate past forecasts and compute the balance per kind; returns a JSON-able summary.

    Without a period, live accuracy covers every past forecast that has an actual, and the
    balance covers the benefit model's default accounting period ending now.
    """
    for name, ts in (("period_start", period_start), ("period_end", period_end)):
        if ts is not None and ts.tzinfo is None:
            raise InputError(f"{name} must be timezone-aware", field=name)
    if period_start and period_end and period_end <= period_start:
        raise InputError("period_end must be after period_start", field="period_end")
    model = benefit.load_benefit_model(benefit_model_path or settings.benefit_model_path)
    with track_run(settings, "evaluate") as run:
        db = open_database(settings)
        migrate.upgrade(db.url)
        with db.connect(autocommit=True) as conn:
            n_grid = recompute_grid_emissions(conn, zone=settings.grid_zone)
            frame = accuracy.forecasts_with_actuals(conn, period_start, period_end)
            live_rows: list[dict[str, Any]] = []
            if not frame.empty:
                # Without a given period, each kind's own forecast span (kinds' data can be
                # years apart, as in the bundled snapshot).
                for _kind, kf in frame.groupby("kind", sort=True):
                    e_start = period_start or kf["ts"].min().to_pydatetime()
                    e_end = period_end or kf["ts"].max().to_pydatetime()
                    live_rows += accuracy.live_evaluation_rows(kf, e_start, e_end)
                accuracy.write_evaluations(conn, live_rows)

            if period_start is None or period_end is None:
                d_start, d_end = default_period(model.accounting.default_period_days)
                b_start = period_start or (
                    period_end - timedelta(days=model.accounting.default_period_days)
                    if period_end else d_start)
                b_end = period_end or d_end
            else:
                b_start, b_end = period_start, period_end
            balances, skipped = _balances(conn, model, frame, b_start, b_end)
        run.details.update(live_rows=len(live_rows), balances=len(balances))
    return {
        "grid_intensity_runs_updated": n_grid,
        "live_evaluation_rows": len(live_rows),
        "balance_period": [b_start.isoformat(), b_end.isoformat()],
        "benefit_model": model.origin,
        "balances": balances,
        "skipped": skipped,
        "evaluate_run_id": run.run_id,
    }


def _kinds(conn: Any) -> list[str]:
    rows = conn.execute("SELECT DISTINCT kind FROM sensors ORDER BY kind").fetchall()
    return [r[0] for r in rows]


def _balances(conn: Any, model: benefit.BenefitModel, frame: Any, start: datetime,
              end: datetime) -> tuple[list[dict[str, Any]], list[str]]:
    out: list[dict[str, Any]] = []
    skipped: list[str] = []
    base = model.accounting.baseline_model
    life_h = model.accounting.training_service_life_h.value
    for kind in _kinds(conn):
        if kind not in model.kinds:
            skipped.append(f"{kind}: no entry in the benefit model")
            continue
        km = model.kind(kind)
        candidates = improvement.balanced_models(conn, kind, base, frame)
        if not candidates:
            skipped.append(f"{kind}: no model to balance (no live forecasts, promoted model or "
                           f"backtest)")
            continue
        for model_id, why in candidates:
            red = (improvement.live_reduction(frame, kind, model_id, km.error_unit)
                   if not frame.empty else None)
            if red is None:
                red = improvement.backtest_reduction(conn, kind, model_id, km.error_unit, base)
            if red is None:
                skipped.append(f"{kind}/{model_id}: no accuracy against '{base}' (live or "
                               f"backtest)")
                continue
            ingest, train, predict = balance.gather_components(conn, kind, model_id, start, end,
                                                               life_h)
            period_h = (end - start).total_seconds() / 3600.0
            av = benefit.avoided(km, red.error_reduction, period_h)
            b = balance.Balance(
                kind=kind, model_id=model_id, period_start=start, period_end=end,
                ingest=ingest, train=train, predict=predict, avoided=av, key_name=km.key,
                key_value=km.energy_factors[km.key].value,
                method=_method(red, ingest, train, predict),
                assumptions={
                    "benefit_model": model.origin,
                    "model_selected_because": why,
                    "training_service_life_h": life_h,
                    "training_service_life_source": " ".join(
                        model.accounting.training_service_life_h.source.split()),
                    "baseline_model": base,
                    "error_reduction_source": red.as_dict(),
                    "kind_model": benefit.assumptions_of(km),
                    "co2_of_compute": "per run: grid_emissions_kg (éCO2mix intensity at run "
                                      "time) where collected, else emissions_kg (CodeCarbon "
                                      "annual country average)",
                    "excluded": "evaluate/report/publish runs (accounting overhead) are not "
                                "attributed to a kind",
                })
            b.assumptions["machine_learning_increment"] = improvement.machine_learning_increment(
                conn, kind, model_id, km, av, base, b.compute_kgco2e)
            balance.upsert_balance(conn, b)
            out.append(summary_of(b))
    return out, skipped


def _method(red: improvement.Reduction, *parts: balance.Component) -> str:
    unmeasured = sum(p.n_unmeasured for p in parts)
    grid = sum(p.n_grid_intensity for p in parts)
    runs = sum(p.n_runs for p in parts)
    text = (f"error reduction from {red.source} accuracy vs the no-AI baseline "
            f"({'; '.join(red.notes)}); compute from {runs} CodeCarbon-measured run(s), "
            f"{grid} with éCO2mix grid intensity at run time, the others with CodeCarbon's "
            f"annual constant; training amortised over its service life")
    if unmeasured:
        text = (f"INCOMPLETE: {unmeasured} run(s) not measured or not recorded, so compute and "
                f"net figures are NULL (never counted as 0). ") + text
    return text


def summary_of(b: balance.Balance) -> dict[str, Any]:
    return {
        "kind": b.kind, "model_id": b.model_id,
        "period": [b.period_start.isoformat(), b.period_end.isoformat()],
        "compute_kwh": b.compute_kwh, "compute_kgco2e": b.compute_kgco2e,
        "avoided_kwh": b.avoided.avoided_kwh, "avoided_kgco2e": b.avoided.avoided_kgco2e,
        "net_kgco2e": b.net_kgco2e, "benefit_cost_ratio": b.ratio,
        "payback_hours": b.payback_hours, "breakeven": b.breakeven(),
        "unmeasured_runs": b.unmeasured_runs(), "method": b.method,
        "machine_learning_increment": b.assumptions.get("machine_learning_increment"),
    }
