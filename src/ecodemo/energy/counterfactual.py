"""The forecast each balance is compared with (its counterfactual), and the secondary lines.

By default (``accounting.counterfactual: {rung: best_no_ai}``) the counterfactual is the no-AI
rung (persistence, seasonal naive, climatology) with the lowest nMAE in the kind's latest
backtest, so the headline avoided figure is what machine learning adds. A kind may declare its
operator's current practice instead: another rung, or a series in the store (a sensor holding
the operator's own forecast of each sensor). The error reduction against the counterfactual
comes from the latest backtest; when the backtest was scored on test origins after a separate
selection window (its details carry a ``protocol``) the record says it is selection-free.
Seasonal naive and persistence stay as secondary lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import psycopg

from ecodemo.energy import benefit, improvement
from ecodemo.energy.improvement import Reduction
from ecodemo.energy.ranges import pair


@dataclass
class Resolved:
    """The counterfactual of one balance: its name, why, and the error reduction against it."""

    name: str
    declared: str
    why: str
    source: str
    protocol: str
    reduction: Reduction | None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        red = self.reduction
        return {"name": self.name, "declared": self.declared, "why": self.why,
                "source": self.source, "protocol": self.protocol, "notes": self.notes,
                "error_reduction": None if red is None else red.error_reduction,
                "error_reduction_range": None if red is None else red.span().pair(),
                "error_unit": None if red is None else red.error_unit,
                "evaluation_period": None if red is None else red.evaluation_period}


_PROTOCOL = """
SELECT details->'protocol' FROM evaluations
WHERE source = 'backtest' AND kind = %s ORDER BY evaluated_at DESC, period_end DESC LIMIT 1
"""


def backtest_protocol(conn: psycopg.Connection, kind: str) -> str:
    row = conn.execute(_PROTOCOL, (kind,)).fetchone()
    if row and row[0]:
        test = row[0].get("test", {}) if isinstance(row[0], dict) else {}
        where = (f" (test: {test.get('folds')} origins, {str(test.get('first_origin'))[:10]} "
                 f"to {str(test.get('last_origin'))[:10]})" if test else "")
        return ("selection-free: every rung scored on test origins after a separate "
                f"selection window{where}")
    return ("the ladder chose on the same origins it was scored on (no separate selection "
            "window recorded): the chosen rung's figures may be optimistic")


def _series_reduction(conn: psycopg.Connection, kind: str, model_id: str, error_unit: str,
                      series: dict[str, str]) -> Reduction | None:
    """MAE of the operator's series minus the model's backtest MAE, per mapped sensor, over
    the model's latest backtest period."""
    red = Reduction(kind=kind, model_id=model_id, source="backtest", error_unit=error_unit,
                    error_reduction=0.0)
    for sensor, forecast_sensor in sorted(series.items()):
        row = conn.execute(
            """SELECT avg(m.mae), min(m.period_start), max(m.period_end), max(s.unit)
               FROM evaluations m JOIN sensors s ON s.sensor_id = m.sensor_id
               WHERE m.source = 'backtest' AND m.kind = %(kind)s AND m.sensor_id = %(s)s
                 AND (m.model_id = %(model)s OR m.model_name =
                      (SELECT name FROM models WHERE model_id = %(model)s))
                 AND m.period_end = (SELECT max(period_end) FROM evaluations
                      WHERE source = 'backtest' AND kind = %(kind)s)""",
            {"kind": kind, "s": sensor, "model": model_id}).fetchone()
        if row is None or row[0] is None:
            red.notes.append(f"sensor {sensor}: no backtest of the model")
            continue
        mae_model, p0, p1, unit = row
        mae = conn.execute(
            """SELECT avg(abs(a.value - f.value)), count(*) FROM readings a
               JOIN readings f ON f.ts = a.ts AND f.sensor_id = %s
               WHERE a.sensor_id = %s AND a.ts >= %s AND a.ts < %s""",
            (forecast_sensor, sensor, p0, p1)).fetchone()
        if mae is None or not mae[1]:
            red.notes.append(f"sensor {sensor}: the series {forecast_sensor} has no value in "
                             f"the backtest period")
            continue
        delta = improvement.convert(float(mae[0]) - float(mae_model), unit, error_unit)
        if delta is None:
            red.notes.append(f"sensor {sensor} left out: unit {unit} is not convertible")
            continue
        red.error_reduction += delta
        red.evaluation_period = (p0.isoformat(), p1.isoformat())
        red.sensors.append({"sensor_id": sensor, "series": forecast_sensor, "n": mae[1],
                            "mae_series": float(mae[0]), "mae_model": float(mae_model),
                            "reduction": delta})
    return red if red.sensors else None


def resolve(conn: psycopg.Connection, model: benefit.BenefitModel, kind: str, model_id: str,
            frame: pd.DataFrame) -> Resolved:
    """The kind's counterfactual and the model's error reduction against it."""
    km = model.kind(kind)
    cf = model.counterfactual(kind)
    declared = (f"declared for {kind} in the benefit model" if km.counterfactual is not None
                else "benefit model default")
    why = " ".join(cf.why.split())
    protocol = backtest_protocol(conn, kind)
    notes: list[str] = []
    if cf.series is not None:
        red = _series_reduction(conn, kind, model_id, km.error_unit, cf.series)
        if red is not None:
            return Resolved(cf.name, declared, why, "backtest", protocol, red, red.notes)
        notes.append("the declared series gave no comparable values: falling back")
    else:
        rung = cf.rung or "best_no_ai"
        if rung == "best_no_ai":
            best = improvement.best_no_ai_baseline(conn, kind)
            if best is not None:
                declared += " (best_no_ai)"
                why += (f" Here: {best}, the lowest nMAE among the no-AI rungs of the latest "
                        f"backtest.")
                rung = best
        if rung != "best_no_ai":
            red = improvement.backtest_reduction(conn, kind, model_id, km.error_unit, rung)
            if red is not None:
                return Resolved(rung, declared, why, "backtest", protocol, red, red.notes)
            notes.append(f"no backtest of the model beside '{rung}': falling back")
        else:
            notes.append("no backtest of the no-AI rungs: falling back")
    # Fallback: the accounting baseline, live accuracy first (what the balance did before).
    base = model.accounting.baseline_model
    red = (improvement.live_reduction(frame, kind, model_id, km.error_unit)
           if not frame.empty else None)
    if red is None:
        red = improvement.backtest_reduction(conn, kind, model_id, km.error_unit, base)
    source = red.source if red is not None else "none"
    return Resolved(base, f"fallback to the accounting baseline ({base})",
                    f"{why} The declared counterfactual could not be evaluated, so the "
                    f"no-AI baseline {base} stands in.", source, protocol, red, notes)


def secondary(conn: psycopg.Connection, model: benefit.BenefitModel, kind: str, model_id: str,
              frame: pd.DataFrame, period_h: float, headline: str) -> list[dict[str, Any]]:
    """Avoided figures against each secondary counterfactual (seasonal naive, persistence)."""
    km = model.kind(kind)
    out: list[dict[str, Any]] = []
    for name in model.accounting.secondary_counterfactuals:
        if name == headline:
            continue
        red = None
        if name == model.accounting.baseline_model and not frame.empty:
            red = improvement.live_reduction(frame, kind, model_id, km.error_unit)
        if red is None:
            red = improvement.backtest_reduction(conn, kind, model_id, km.error_unit, name)
        if red is None:
            out.append({"counterfactual": name, "source": None, "avoided_kwh": None,
                        "avoided_kgco2e": None, "note": "no accuracy against it"})
            continue
        av = benefit.avoided(km, red.span(), period_h)
        out.append({"counterfactual": name, "source": red.source,
                    "error_reduction": red.error_reduction,
                    "error_reduction_range": red.span().pair(), "avoided_kwh": av.avoided_kwh,
                    "avoided_kwh_range": pair(av.kwh_span),
                    "avoided_kgco2e": av.avoided_kgco2e,
                    "avoided_kgco2e_range": pair(av.kgco2e_span)})
    return out
