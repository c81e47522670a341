"""The evaluator's report: every figure with its method, source and assumptions.

Organised after AFNOR SPEC 2314 (frugal AI): (1) the need for AI, shown as the accuracy of each
model against the no-AI baseline; (2) the frugal practices applied; (3) the measured footprint
per stage and kind; (4) the benefit-versus-cost balance with its assumptions. ``build_report``
returns one JSON-able dict; ``figures`` is the same content flattened, one figure per row, which
is what the CSV export writes.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecodemo.config import Settings
from ecodemo.energy import benefit
from ecodemo.energy.grid import DEFAULT_SOURCE as GRID_SOURCE
from ecodemo.energy.practices import frugal_practices
from ecodemo.metering import INTENSITY_SOURCE
from ecodemo.store.connection import open_database

FRAMEWORK = ("AFNOR SPEC 2314 (référentiel général pour l'IA frugale)-minded summary: need for "
             "AI against a no-AI baseline, frugal practices applied, measured footprint, "
             "benefit versus cost")

def _q(conn: Any, sql: str, params: Any = None) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    cols = [d.name for d in cur.description or []]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


_NEED = """
WITH scoped AS (
    SELECT e.* FROM evaluations e
    WHERE e.sensor_id = '__all__' OR NOT EXISTS (
        SELECT 1 FROM evaluations a WHERE a.sensor_id = '__all__' AND a.source = e.source
          AND a.kind = e.kind AND a.model_name = e.model_name
          AND a.period_start = e.period_start AND a.period_end = e.period_end)
), latest AS (
    SELECT DISTINCT ON (kind, model_name, source) kind, model_name, source, period_start,
           period_end
    FROM scoped ORDER BY kind, model_name, source, evaluated_at DESC, period_end DESC
)
SELECT s.kind, s.model_name, max(s.model_id) AS model_id, s.source,
       min(s.period_start) AS period_start, max(s.period_end) AS period_end,
       sum(s.n)::bigint AS n, avg(s.mae) AS mae, avg(s.nmae) AS nmae,
       avg(s.skill_vs_seasonal_naive) AS skill_vs_seasonal_naive,
       avg(s.coverage_p10_p90) AS coverage_p10_p90, count(*)::int AS rows_averaged
FROM scoped s JOIN latest l USING (kind, model_name, source, period_start, period_end)
GROUP BY s.kind, s.model_name, s.source
ORDER BY s.kind, s.source DESC, s.model_name
"""

_FOOTPRINT = """
SELECT stage, coalesce(sensor_kind, '(all kinds)') AS kind, count(*)::int AS runs,
       count(*) FILTER (WHERE energy_kwh IS NULL)::int AS unmeasured_runs,
       count(*) FILTER (WHERE status = 'failed')::int AS failed_runs,
       sum(duration_s) AS duration_s,
       sum(energy_kwh) AS energy_kwh_measured_runs,
       sum(emissions_kg) AS emissions_kg_annual_constant_measured_runs,
       sum(grid_emissions_kg) AS grid_emissions_kg,
       count(grid_emissions_kg)::int AS runs_with_grid_intensity,
       min(started_at) AS first_run, max(started_at) AS last_run,
       string_agg(DISTINCT measurement_method, ' | ') AS methods,
       string_agg(DISTINCT cpu_model, ' | ') AS cpu_models,
       string_agg(DISTINCT tracking_mode, ' | ') AS tracking_modes,
       string_agg(DISTINCT codecarbon_version, ' | ') AS codecarbon_versions
FROM compute_runs GROUP BY stage, coalesce(sensor_kind, '(all kinds)') ORDER BY 1, 2
"""

_BALANCES = """
SELECT DISTINCT ON (kind, model_id) kind, model_id, period_start, period_end, evaluated_at,
       ingest_kwh, train_kwh, predict_kwh, compute_kwh, compute_kgco2e, avoided_kwh,
       avoided_kgco2e, net_kgco2e, benefit_cost_ratio, payback_hours, breakeven, method,
       assumptions
FROM balances ORDER BY kind, model_id, evaluated_at DESC, period_end DESC
"""


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if hasattr(v, "__float__") and not isinstance(v, int | float | bool):
        return float(v)
    return v


def build_report(settings: Settings, benefit_model_path: Path | None = None) -> dict[str, Any]:
    """Everything an evaluator files, from the store, as one JSON-able dict."""
    model = benefit.load_benefit_model(benefit_model_path or settings.benefit_model_path)
    base = model.accounting.baseline_model
    db = open_database(settings)
    with db.connect(autocommit=True) as conn:
        need = _q(conn, _NEED)
        footprint = _q(conn, _FOOTPRINT)
        balances = _q(conn, _BALANCES)
        choices = _q(conn, """SELECT DISTINCT ON (kind) kind, chosen_name, model_id, tolerance,
                                  reason, decided_at
                              FROM model_choices ORDER BY kind, decided_at DESC""")
        n_grid = conn.execute("SELECT count(*) FROM grid_intensity").fetchone()
        practices = frugal_practices(conn)
    for row in footprint:
        # A total over runs of which some were not measured is unknown, not the partial sum.
        row["energy_kwh"] = row["energy_kwh_measured_runs"] if not row["unmeasured_runs"] \
            else None
    report: dict[str, Any] = {
        "title": "ecodemo: frugal-AI evaluation report",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": db.label,
        "framework": FRAMEWORK,
        "need_for_ai": {
            "baseline_model": base,
            "method": "MAE/nMAE/skill of each model against the no-AI seasonal-naive baseline; "
                      "'live' = past forecasts as issued vs actuals, 'backtest' = rolling-origin "
                      "backtest; averaged over horizons of the latest evaluation",
            "source": "evaluations table",
            "models": need,
            "ladder_choices": choices,
        },
        # checked in the store now, each with its evidence (ecodemo.energy.practices)
        "frugal_practices": practices,
        "measured_footprint": {
            "method": "CodeCarbon OfflineEmissionsTracker, tracking_mode 'process' (this "
                      "process's CPU share, so parallel tasks do not count each other); on "
                      "machines without RAPL counters energy is ESTIMATED from CPU load x TDP "
                      "and a constant RAM power (each run's measurement_method says which)",
            "co2_sources": {"emissions_kg": INTENSITY_SOURCE,
                            "grid_emissions_kg": f"{GRID_SOURCE}, value at run time "
                                                 f"({n_grid[0] if n_grid else 0} points held)"},
            "null_policy": "runs whose measurement failed are NULL and counted in "
                           "unmeasured_runs; a total over them is NULL (energy_kwh), the sum "
                           "over measured runs is given separately as a lower bound",
            "by_stage_and_kind": footprint,
        },
        "balances": {
            "method": "see ecodemo.energy.balance and docs/accounting.md: against a named "
                      "counterfactual; compute = collection, the whole model selection and the "
                      "training of the version in service (amortised over its service life), "
                      "inference and evaluation in the period; every figure with [low, high] "
                      "from measurement bands and assumption ranges; net = avoided - compute",
            "benefit_model": model.origin,
            "rows": balances,
        },
        "benefit_model": {
            "origin": model.origin,
            "training_service_life_h": model.accounting.training_service_life_h.model_dump(),
            "counterfactual": model.accounting.counterfactual.model_dump(),
            "measurement_bands": {k: v.model_dump()
                                  for k, v in model.accounting.measurement_bands.items()},
            "kinds": {k: benefit.assumptions_of(km) for k, km in model.kinds.items()},
        },
    }
    if not balances:
        report["balances"]["note"] = "no balance stored yet: run `ecodemo evaluate`"
    report = _jsonable(report)
    report["figures"] = figures(report)
    return report


def _fig(section: str, figure: str, value: Any, unit: str, method: str, source: str,
         assumptions: Any = None, kind: str | None = None, model: str | None = None,
         stage: str | None = None) -> dict[str, Any]:
    return {"section": section, "kind": kind, "model_id": model, "stage": stage,
            "figure": figure, "value": value, "unit": unit, "method": method, "source": source,
            "assumptions": assumptions}


def figures(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report flattened: one figure per row, each with method, source and assumptions."""
    out = []
    need = report["need_for_ai"]
    for m in need["models"]:
        for name, unit in (("mae", "sensor unit"), ("nmae", "1"),
                           ("skill_vs_seasonal_naive", "1"), ("coverage_p10_p90", "1")):
            out.append(_fig("need_for_ai", name, m[name], unit,
                            f"{m['source']} evaluation, {m['n']} forecasts, averaged over "
                            f"{m['rows_averaged']} horizon row(s); baseline "
                            f"'{need['baseline_model']}'",
                            f"evaluations ({m['period_start']} to {m['period_end']})",
                            kind=m["kind"], model=m["model_id"] or m["model_name"]))
    fp = report["measured_footprint"]
    for r in fp["by_stage_and_kind"]:
        common = dict(kind=r["kind"], stage=r["stage"],
                      assumptions={"unmeasured_runs": r["unmeasured_runs"], "runs": r["runs"]})
        out.append(_fig("measured_footprint", "energy_kwh", r["energy_kwh"], "kWh",
                        r["methods"] or "", "compute_runs (CodeCarbon)", **common))
        out.append(_fig("measured_footprint", "energy_kwh_measured_runs",
                        r["energy_kwh_measured_runs"], "kWh",
                        "sum over measured runs only (lower bound if any run is unmeasured)",
                        "compute_runs (CodeCarbon)", **common))
        out.append(_fig("measured_footprint", "emissions_kg_annual_constant",
                        r["emissions_kg_annual_constant_measured_runs"], "kgCO2e",
                        "energy x CodeCarbon annual country intensity",
                        fp["co2_sources"]["emissions_kg"], **common))
        out.append(_fig("measured_footprint", "grid_emissions_kg", r["grid_emissions_kg"],
                        "kgCO2e", f"energy x éCO2mix intensity at run time, "
                        f"{r['runs_with_grid_intensity']} of {r['runs']} run(s)",
                        fp["co2_sources"]["grid_emissions_kg"], **common))
    for b in report["balances"]["rows"]:
        assumptions = b["assumptions"]
        for name, unit in (("train_kwh", "kWh"), ("predict_kwh", "kWh"), ("ingest_kwh", "kWh"),
                           ("compute_kwh", "kWh"), ("compute_kgco2e", "kgCO2e"),
                           ("avoided_kwh", "kWh"), ("avoided_kgco2e", "kgCO2e"),
                           ("net_kgco2e", "kgCO2e"), ("benefit_cost_ratio", "1"),
                           ("payback_hours", "h")):
            out.append(_fig("balance", name, b[name], unit, b["method"],
                            f"balances ({b['period_start']} to {b['period_end']})",
                            assumptions, kind=b["kind"], model=b["model_id"]))
        comps = assumptions.get("components") or {}
        sel = comps.get("selection") or {}
        out.append(_fig("balance", "selection_kwh", sel.get("kwh"), "kWh", sel.get("note", ""),
                        "balances", {"range": sel.get("kwh_range")}, kind=b["kind"],
                        model=b["model_id"]))
        emb = assumptions.get("embodied")
        if emb:     # the machine's manufacturing share: kgCO2e, never energy
            out.append(_fig("balance", "embodied_kgco2e", emb.get("kgco2e"), "kgCO2e",
                            emb.get("method", ""), emb.get("source", ""),
                            {"range": emb.get("kgco2e_range")}, kind=b["kind"],
                            model=b["model_id"]))
        for name, rng in (assumptions.get("ranges") or {}).items():
            out.append(_fig("balance", name, rng, "[low, high]",
                            "low/central/high propagated from measurement bands and the "
                            "benefit model's assumption ranges", "balances", None,
                            kind=b["kind"], model=b["model_id"]))
        cf = assumptions.get("counterfactual") or {}
        out.append(_fig("balance", "counterfactual", cf.get("name"), "", cf.get("why", ""),
                        cf.get("declared") or "benefit model", cf, kind=b["kind"],
                        model=b["model_id"]))
        out.append(_fig("balance", "energy_effect", assumptions.get("energy_effect"), "",
                        "saved: energy not used; shifted: moved to other producers (only its "
                        "CO2 difference is avoided, never in a kWh net)", "benefit model",
                        kind=b["kind"], model=b["model_id"]))
        be = b["breakeven"]
        out.append(_fig("balance", f"breakeven {be.get('parameter')}", be.get("breakeven_value"),
                        "", be.get("statement") or be.get("meaning", ""), "balances", be,
                        kind=b["kind"], model=b["model_id"]))
    for kind, km in report["benefit_model"]["kinds"].items():
        for group in ("energy_factors", "emission_terms"):
            for name, p in km[group].items():
                out.append(_fig("benefit_model", name, p["value"], p["unit"],
                                "assumption" if p["assumption"] else "unit conversion",
                                p["source"], {"lever": km["lever"], "key": km["key"]},
                                kind=kind))
    return out


CSV_COLUMNS = ("section", "kind", "model_id", "stage", "figure", "value", "unit", "method",
               "source", "assumptions")


def to_csv(report: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for f in report["figures"]:
        row = dict(f)
        a = row["assumptions"]
        row["assumptions"] = "" if a is None else json.dumps(a, ensure_ascii=False,
                                                             default=str)
        w.writerow(row)
    return buf.getvalue()


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, default=str)
