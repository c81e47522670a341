"""Stage functions of the energy area (called by Airflow tasks and the CLI).

``evaluate``: grid-intensity recomputation of compute runs, live accuracy of past forecasts
(``evaluations``, source 'live'), then the benefit-versus-cost balance per kind and model
(``balances``). It measures itself as two 'evaluate' runs, accuracy then balance, so the
balance counts the accuracy run it reads (the balance run is counted by the next balance).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ecodemo.config import Settings
from ecodemo.energy import accuracy, balance, benefit, counterfactual, embodied, gather, improvement
from ecodemo.energy.grid import recompute_grid_emissions
from ecodemo.energy.ranges import Span
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
    db = open_database(settings)
    migrate.upgrade(db.url)
    # Two measured runs, recorded in this order: the balance's accounting component reads the
    # evaluate runs already recorded in its period, so the accuracy run (the bulk of the work)
    # is counted by the balance it feeds; the balance run itself is counted by the next one.
    with track_run(settings, "evaluate", details={"step": "accuracy"}) as run, \
            db.connect(autocommit=True) as conn:
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
        run.details.update(live_rows=len(live_rows))

    if period_start is None or period_end is None:
        d_start, d_end = default_period(model.accounting.default_period_days)
        b_start = period_start or (
            period_end - timedelta(days=model.accounting.default_period_days)
            if period_end else d_start)
        b_end = period_end or d_end
    else:
        b_start, b_end = period_start, period_end
    with track_run(settings, "evaluate", details={"step": "balance"}) as brun, \
            db.connect(autocommit=True) as conn:
        balances, skipped = _balances(conn, model, frame, b_start, b_end,
                                      zone=settings.grid_zone)
        brun.details.update(balances=len(balances))
    return {
        "grid_intensity_runs_updated": n_grid,
        "live_evaluation_rows": len(live_rows),
        "balance_period": [b_start.isoformat(), b_end.isoformat()],
        "benefit_model": model.origin,
        "balances": balances,
        "skipped": skipped,
        "evaluate_run_id": run.run_id,
        "balance_run_id": brun.run_id,
    }


def _kinds(conn: Any) -> list[str]:
    rows = conn.execute("SELECT DISTINCT kind FROM sensors ORDER BY kind").fetchall()
    return [r[0] for r in rows]


def _balances(conn: Any, model: benefit.BenefitModel, frame: Any, start: datetime,
              end: datetime, zone: str = "FR") -> tuple[list[dict[str, Any]], list[str]]:
    out: list[dict[str, Any]] = []
    skipped: list[str] = []
    base = model.accounting.baseline_model
    life = model.accounting.training_service_life_h
    annual = model.accounting.annual_intensity_factor
    kinds = [k for k in _kinds(conn) if k in model.kinds]
    period_h = (end - start).total_seconds() / 3600.0
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
            cf = counterfactual.resolve(conn, model, kind, model_id, frame)
            red = cf.reduction
            if red is None:
                skipped.append(f"{kind}/{model_id}: no accuracy against '{cf.name}' or "
                               f"'{base}' (live or backtest)")
                continue
            parts = gather.gather_components(conn, kind, model_id, start, end, life,
                                             n_kinds=len(kinds),
                                             band=lambda m: model.accounting.band(m)[0],
                                             inference_cadence_h=(
                                                 model.accounting.inference_cadence_h),
                                             annual_intensity=annual, zone=zone)
            av = benefit.avoided(km, red.span(), period_h)
            b = balance.Balance(
                kind=kind, model_id=model_id, period_start=start, period_end=end, **parts,
                avoided=av, embodied=_embodied(model.accounting, parts), key_name=km.key,
                key_value=km.energy_factors[km.key].value,
                key_unit=km.energy_factors[km.key].unit,
                method=_method(red, cf, *parts.values()),
                assumptions={
                    "benefit_model": model.origin,
                    "model_selected_because": why,
                    "counterfactual": cf.as_dict(),
                    "secondary_counterfactuals": counterfactual.secondary(
                        conn, model, kind, model_id, frame, period_h, cf.name),
                    "period": _period_statement(start, end, red),
                    "training_service_life_h": life.value,
                    "training_service_life_range_h": list(life.bounds()),
                    "training_service_life_source": " ".join(life.source.split()),
                    "measurement_bands": {k: {"relative": v.relative,
                                              "source": " ".join(v.source.split())}
                                          for k, v in model.accounting.measurement_bands.items()},
                    "baseline_model": base,
                    "error_reduction_source": red.as_dict(),
                    "kind_model": benefit.assumptions_of(km),
                    "co2_of_compute": _co2_of_compute(annual, zone),
                    "error_reduction_interval": red.interval,
                    "not_propagated": _not_propagated(red),
                })
            b.assumptions["machine_learning_increment"] = improvement.machine_learning_increment(
                conn, kind, model_id, km, benefit.avoided(km, _vs_baseline(
                    conn, kind, model_id, km, frame, base, red), period_h), base,
                b.spent_kgco2e)
            balance.upsert_balance(conn, b)
            out.append(summary_of(b))
    return out, skipped


def _embodied(acc: benefit.Accounting,
              parts: dict[str, balance.Component]) -> embodied.Embodied:
    """The machine's manufacturing share for the hours of the balance's runs."""
    spans = [c.hours_span for c in parts.values()]
    hours = None if any(h is None for h in spans) else sum(
        (h for h in spans if h is not None), start=Span.point(0.0))
    kg, life = acc.embodied_kgco2e, acc.embodied_lifetime_years
    if kg is None or life is None:
        return embodied.embodied_of(hours)
    source = "; ".join(" ".join(t.split()) for t in (kg.source, life.source))
    return embodied.embodied_of(hours, kg.span(), life.span(), declared_source=source)


def _vs_baseline(conn: Any, kind: str, model_id: str, km: benefit.KindModel, frame: Any,
                 base: str, headline: improvement.Reduction) -> float:
    """Error reduction against the accounting baseline (what the ML increment is a share of):
    from the backtest first, the source of the share, so that the increment against the best
    no-AI rung equals the headline; live accuracy only without a backtest."""
    red = improvement.backtest_reduction(conn, kind, model_id, km.error_unit, base)
    if red is None and not frame.empty:
        red = improvement.live_reduction(frame, kind, model_id, km.error_unit)
    return red.error_reduction if red is not None else headline.error_reduction


def _co2_of_compute(annual: benefit.Parameter | None, zone: str) -> dict[str, Any]:
    """How each run's CO2 and its range were made (stored with every balance)."""
    out: dict[str, Any] = {
        "central": "per run: grid_emissions_kg (éCO2mix intensity at run time) where "
                   "collected, else emissions_kg (CodeCarbon annual country average)",
        "grid_runs_range": f"the lowest and highest éCO2mix values collected for zone {zone} "
                           f"within the run's duration +/- the 30 min matching tolerance, "
                           f"relative to the value used"}
    if annual is None:
        out["annual_constant_range"] = "none given: the annual constant is taken as a point"
    else:
        out["annual_constant_range"] = {
            "factor": annual.value, "range": list(annual.bounds()),
            "source": " ".join(annual.source.split()),
            "range_source": " ".join((annual.range_source or "").split())}
    return out


def _not_propagated(red: improvement.Reduction) -> str:
    if red.interval is not None:
        return ("nothing left as a point: the error reduction carries its bootstrap interval "
                "over the backtest's test origins (error_reduction_interval) and the carbon "
                "intensity of compute its range (co2_of_compute)")
    return ("the error reduction is a point (no errors per test origin: its sampling error is "
            "not propagated); the carbon intensity of compute carries its range "
            "(co2_of_compute)")


def _period_statement(start: datetime, end: datetime,
                      red: improvement.Reduction) -> dict[str, Any]:
    """Benefit and cost over the same stated period, and where the accuracy was measured."""
    hours = (end - start).total_seconds() / 3600.0
    measured = red.evaluation_period
    return {"accounting_period": [start.isoformat(), end.isoformat()], "hours": hours,
            "accuracy_measured_on": list(measured) if measured else None,
            "statement": (
                f"benefit and cost over the same {hours:g} h: the error reduction measured on "
                f"{measured[0][:10] + ' to ' + measured[1][:10] if measured else 'the data'} "
                f"({red.source}) is assumed to hold over the accounting period; compute is "
                f"the runs made in it (selection and training amortised over the service "
                f"life)")}


def _method(red: improvement.Reduction, cf: counterfactual.Resolved,
            *parts: balance.Component) -> str:
    unmeasured = sum(p.n_unmeasured for p in parts)
    grid = sum(p.n_grid_intensity for p in parts)
    runs = sum(p.n_runs for p in parts)
    text = (f"error reduction from {red.source} accuracy against the counterfactual "
            f"'{cf.name}' ({'; '.join(red.notes)}); compute from {runs} CodeCarbon-measured "
            f"run(s) (collection, the whole model selection, training of the version in "
            f"service, inference, evaluation), {grid} with éCO2mix grid intensity at run "
            f"time, the others with CodeCarbon's annual constant; selection and training "
            f"amortised over the service life; the machine's embodied (manufacturing) CO2e "
            f"for the runs' hours added to the CO2 spent, apart from energy (see embodied); "
            f"every figure with its [low, high] range")
    if unmeasured:
        text = (f"INCOMPLETE: {unmeasured} run(s) not measured or not recorded, so compute and "
                f"net figures are NULL (never counted as 0). ") + text
    return text


def summary_of(b: balance.Balance) -> dict[str, Any]:
    a = b.full_assumptions()
    return {
        "kind": b.kind, "model_id": b.model_id,
        "period": [b.period_start.isoformat(), b.period_end.isoformat()],
        "counterfactual": a.get("counterfactual"),
        "energy_effect": b.avoided.energy_effect,
        "compute_kwh": b.compute_kwh, "compute_kgco2e": b.compute_kgco2e,
        "selection_kwh": b.selection.kwh,
        "avoided_kwh": b.avoided.avoided_kwh, "avoided_kgco2e": b.avoided.avoided_kgco2e,
        "net_kgco2e": b.net_kgco2e, "net_kwh": b.net_kwh, "benefit_cost_ratio": b.ratio,
        "payback_hours": b.payback_hours, **a["ranges"], "breakeven": b.breakeven(),
        "embodied_kgco2e": None if b.embodied is None else b.embodied.kgco2e,
        "secondary_counterfactuals": a.get("secondary_counterfactuals"),
        "unmeasured_runs": b.unmeasured_runs(), "method": b.method,
        "machine_learning_increment": a.get("machine_learning_increment"),
    }
