"""How much a model reduces the forecast error against the no-AI baseline, per kind.

Two sources, in order of preference:

- **live**: past forecasts as issued, joined to the readings at their target time; the
  baseline is seasonal naive built from the readings known at issue time
  (:mod:`ecodemo.energy.accuracy`);
- **backtest**: the latest rolling-origin backtest in ``evaluations`` (source 'backtest'),
  comparing the model's rows with the baseline rung's rows on the same sensor, horizon and
  period (or, without a baseline row, MAE / (1 - skill)).

The reduction is the sum over the kind's sensors of MAE(baseline) - MAE(model), converted to the
benefit model's error unit (MW for renewables, count per hour for transport). Sensors in another
dimension (road occupancy in %) cannot be converted and are left out, with a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from ecodemo.energy import benefit, sampling
from ecodemo.energy.accuracy import ALL_SENSORS, pooled_live_errors
from ecodemo.energy.ranges import Span
from ecodemo.errors import InputError
from ecodemo.models.baselines import BASELINES
from ecodemo.units import factor


@dataclass
class Reduction:
    kind: str
    model_id: str
    source: str                       # 'live' | 'backtest'
    error_unit: str
    error_reduction: float            # sum over sensors, in error_unit
    sensors: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    evaluation_period: tuple[str, str] | None = None
    # bootstrap over the test origins (ecodemo.energy.sampling); None: a point, said in notes
    interval: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def span(self) -> Span:
        """The error reduction with its sampling interval (a point when none could be made)."""
        iv = self.interval
        if iv is None or iv.get("low") is None or iv.get("high") is None:
            return Span.point(self.error_reduction)
        return Span(min(iv["low"], self.error_reduction), self.error_reduction,
                    max(iv["high"], self.error_reduction))


_NO_ORIGINS = ("error reduction is a point: sensor {sensor} has no errors per test origin for "
               "both forecasts (a backtest made before they were stored, or a baseline taken "
               "from the skill score; rerun the model ladder to get its interval)")


def _sampling_interval(red: Reduction,
                       per_origin: dict[str, list[tuple[float, Any, Any]]]) -> None:
    """Give ``red`` the bootstrap interval of its error reduction over the backtest's test
    origins, from the errors per origin the ladder stores with each sensor's row; a note says
    why not when a row has none (a backtest from before they were stored, a baseline taken
    from the skill score)."""
    pairs: list[sampling.PairedErrors] = []
    horizons: list[float] = []
    for s in red.sensors:
        rows = per_origin.get(s["sensor_id"], [])
        to_unit = convert(1.0, s["unit"], red.error_unit)
        for horizon_h, po_m, po_b in rows:
            if not po_m or not po_b or to_unit is None or po_m.get("origins") != po_b.get(
                    "origins"):
                red.notes.append(_NO_ORIGINS.format(sensor=s["sensor_id"]))
                return
            horizons.append(float(horizon_h))
            pairs.append(sampling.PairedErrors(
                s["sensor_id"], to_unit / len(rows),
                np.asarray(po_m["abs_error_sum"], dtype=float), np.asarray(po_m["n"], float),
                np.asarray(po_b["abs_error_sum"], dtype=float), np.asarray(po_b["n"], float)))
    if pairs:
        _apply_interval(red, pairs, sampling.block_days(max(horizons)), "test origins")


def _apply_interval(red: Reduction, pairs: list[sampling.PairedErrors], block: int,
                    what: str) -> None:
    iv = sampling.reduction_interval(pairs, block)
    if not math.isclose(iv["point"], red.error_reduction, rel_tol=1e-6, abs_tol=1e-12):
        red.notes.append(f"error reduction is a point: the errors per origin give "
                         f"{iv['point']:.6g}, not the stored {red.error_reduction:.6g}")
        return
    red.interval = iv
    red.notes.append(
        f"error reduction interval: {iv['level']:.0%} percentile interval of a moving-block "
        f"bootstrap over the {iv['origins']} {what} (blocks of {iv['block_days']} "
        f"day(s), {iv['resamples']} resamples, seed {iv['seed']}, model and counterfactual "
        f"resampled on the same days)")


def convert(value: float, unit: str, error_unit: str) -> float | None:
    try:
        return value * factor(unit, error_unit)
    except (InputError, KeyError):
        return None


def live_reduction(frame: pd.DataFrame, kind: str, model_id: str,
                   error_unit: str) -> Reduction | None:
    errors = pooled_live_errors(frame[frame["kind"] == kind], model_id)
    if not errors:
        return None
    red = Reduction(kind=kind, model_id=model_id, source="live", error_unit=error_unit,
                    error_reduction=0.0)
    sub = frame[(frame["model_id"] == model_id) & (frame["kind"] == kind)]
    red.evaluation_period = (sub["ts"].min().isoformat(), sub["ts"].max().isoformat())
    for e in errors:
        delta = convert(e.mae_baseline - e.mae_model, e.unit, error_unit)
        if delta is None:
            red.notes.append(f"sensor {e.sensor_id} left out: unit {e.unit} is not convertible "
                             f"to {error_unit}")
            continue
        red.error_reduction += delta
        red.sensors.append({"sensor_id": e.sensor_id, "unit": e.unit, "n": e.n,
                            "mae_model": e.mae_model, "mae_baseline": e.mae_baseline,
                            "reduction": delta})
    red.notes.append("live: past forecasts as issued, all horizons pooled; baseline = seasonal "
                     "naive from readings known at issue time")
    if red.sensors:
        _live_interval(red, frame, model_id)
    return red if red.sensors else None


def _live_interval(red: Reduction, frame: pd.DataFrame, model_id: str) -> None:
    """The live error reduction's bootstrap interval: the resampled origins are the UTC days
    the forecasts were issued on (every forecast issued that day with its targets), in blocks
    of days as long as the longest lead, so forecasts that share target hours stay together."""
    g = frame[(frame["kind"] == red.kind) & (frame["model_id"] == model_id)
              & frame["naive"].notna()]
    day = pd.to_datetime(g["issued_at"], utc=True).dt.floor("D").to_numpy()
    days = np.unique(day)
    if len(days) < 2:
        red.notes.append("error reduction is a point: the live forecasts were issued on one day, "
                         "there are no days to resample")
        return
    pos = np.searchsorted(days, day)
    pairs = []
    for s in red.sensors:
        m = (g["sensor_id"] == s["sensor_id"]).to_numpy()
        a, p50, naive = (g[c].to_numpy(dtype=float)[m] for c in ("actual", "p50", "naive"))
        n = np.bincount(pos[m], minlength=len(days)).astype(float)
        pairs.append(sampling.PairedErrors(
            s["sensor_id"], convert(1.0, s["unit"], red.error_unit) or 0.0,
            np.bincount(pos[m], np.abs(a - p50), minlength=len(days)), n,
            np.bincount(pos[m], np.abs(a - naive), minlength=len(days)), n))
    lead_h = (pd.to_datetime(g["ts"], utc=True) - pd.to_datetime(g["issued_at"], utc=True))
    _apply_interval(red, pairs, sampling.block_days(lead_h.max() / pd.Timedelta(hours=1)),
                    "issue days")


_BACKTEST = """
SELECT m.sensor_id, m.horizon_h, m.mae, m.skill_vs_seasonal_naive, b.mae AS mae_base,
       m.period_start, m.period_end, m.evaluated_at, s.unit,
       m.details->'per_origin' AS po_model, b.details->'per_origin' AS po_base
FROM evaluations m
LEFT JOIN evaluations b ON b.source = 'backtest' AND b.kind = m.kind
     AND b.model_name = %(base)s AND b.sensor_id = m.sensor_id AND b.horizon_h = m.horizon_h
     AND b.period_start = m.period_start AND b.period_end = m.period_end
LEFT JOIN sensors s ON s.sensor_id = m.sensor_id
WHERE m.source = 'backtest' AND m.kind = %(kind)s AND m.mae IS NOT NULL
  -- The backtest of a rung stands for every version of it: the ladder backtests the rung
  -- (registering a candidate), then `train` refits the same rung on all data as a new version.
  AND (m.model_id = %(model)s
       OR m.model_name = (SELECT name FROM models WHERE model_id = %(model)s))
ORDER BY m.evaluated_at DESC, m.period_end DESC
"""


def backtest_reduction(conn: psycopg.Connection, kind: str, model_id: str, error_unit: str,
                       baseline: str) -> Reduction | None:
    rows = conn.execute(_BACKTEST, {"kind": kind, "model": model_id, "base": baseline}).fetchall()
    if not rows:
        return None
    latest = rows[0][5:7]
    rows = [r for r in rows if tuple(r[5:7]) == tuple(latest)]
    red = Reduction(kind=kind, model_id=model_id, source="backtest", error_unit=error_unit,
                    error_reduction=0.0,
                    evaluation_period=(latest[0].isoformat(), latest[1].isoformat()))
    per_sensor = [r for r in rows if r[0] != ALL_SENSORS]
    use_all = not per_sensor
    if use_all:
        per_sensor = rows
    by_sensor: dict[str, list[float]] = {}
    units: dict[str, str | None] = {}
    per_origin: dict[str, list[tuple[float, Any, Any]]] = {}
    for sensor, horizon_h, mae, skill, mae_base, *_rest, unit, po_model, po_base in per_sensor:
        if mae_base is None:
            # skill is against seasonal naive: it stands in for that baseline only
            if baseline != "seasonal_naive" or skill is None or skill >= 1:
                continue
            mae_base = mae / (1.0 - skill)  # skill = 1 - MAE/MAE_naive
        by_sensor.setdefault(sensor, []).append(mae_base - mae)
        per_origin.setdefault(sensor, []).append((horizon_h, po_model, po_base))
        units[sensor] = unit
    if use_all and by_sensor:
        # Only the kind's aggregate is known: count it once per sensor in the error unit.
        sensors = conn.execute("SELECT sensor_id, unit FROM sensors WHERE kind = %s",
                               (kind,)).fetchall()
        convertible = [(s, u) for s, u in sensors if convert(1.0, u, error_unit) is not None]
        mean_delta = sum(by_sensor[ALL_SENSORS]) / len(by_sensor[ALL_SENSORS])
        units_set = {u for _s, u in convertible}
        if len(units_set) != 1:
            red.notes.append("backtest has only the '__all__' aggregate and the kind's sensors "
                             "have no single convertible unit: no reduction")
            return None
        unit = units_set.pop()
        delta = convert(mean_delta, unit, error_unit) or 0.0
        red.error_reduction = delta * len(convertible)
        red.sensors.append({"sensor_id": ALL_SENSORS, "unit": unit, "sensors": len(convertible),
                            "reduction_per_sensor": delta, "reduction": red.error_reduction})
        red.notes.append(f"backtest gives only the kind's aggregate: its MAE reduction is "
                         f"counted once for each of the {len(convertible)} sensor(s)")
        red.notes.append(_NO_ORIGINS.format(sensor=ALL_SENSORS))
    else:
        for sensor, deltas in sorted(by_sensor.items()):
            unit = units.get(sensor)
            d = convert(sum(deltas) / len(deltas), unit, error_unit) if unit else None
            if d is None:
                red.notes.append(f"sensor {sensor} left out: unit {unit} is not convertible to "
                                 f"{error_unit}")
                continue
            red.error_reduction += d
            red.sensors.append({"sensor_id": sensor, "unit": unit, "horizons": len(deltas),
                                "reduction": d})
        _sampling_interval(red, per_origin)
    red.notes.append(
        "backtest: the error reduction comes from the "
        f"latest rolling-origin backtest ({latest[0].date()} to {latest[1].date()}), MAE "
        f"averaged over horizons, baseline '{baseline}', applied to the accounting period")
    return red if red.sensors else None


def balanced_models(conn: psycopg.Connection, kind: str, baseline: str,
                    frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(model_id, why) pairs to balance for a kind: live models, else promoted/chosen ones."""
    live = frame[(frame["kind"] == kind) & (frame["model_name"] != baseline)]
    if not live.empty:
        return [(str(m), "forecasts issued in the period") for m in
                sorted(live["model_id"].unique())]
    rows = conn.execute("SELECT model_id FROM models WHERE kind = %s AND status = 'promoted' "
                        "AND name <> %s ORDER BY model_id", (kind, baseline)).fetchall()
    if rows:
        return [(r[0], "promoted model") for r in rows]
    row = conn.execute("SELECT model_id FROM model_choices WHERE kind = %s AND model_id IS NOT "
                       "NULL AND chosen_name <> %s ORDER BY decided_at DESC LIMIT 1",
                       (kind, baseline)).fetchone()
    if row:
        return [(row[0], "latest model-ladder choice")]
    rows = conn.execute("""SELECT DISTINCT model_id FROM evaluations WHERE source = 'backtest'
        AND kind = %s AND model_id IS NOT NULL AND model_name <> %s
        ORDER BY model_id""", (kind, baseline)).fetchall()
    return [(r[0], "backtested model") for r in rows]


_BEST_NO_AI = """
WITH latest AS (
    SELECT period_start, period_end FROM evaluations
    WHERE source = 'backtest' AND kind = %(kind)s
    ORDER BY evaluated_at DESC, period_end DESC LIMIT 1)
SELECT e.model_name, avg(e.nmae) AS nmae
FROM evaluations e JOIN latest l USING (period_start, period_end)
WHERE e.source = 'backtest' AND e.kind = %(kind)s AND e.sensor_id = %(all)s
  AND e.model_name = ANY(%(names)s) AND e.nmae IS NOT NULL
GROUP BY e.model_name ORDER BY 2, 1 LIMIT 1
"""


def best_no_ai_baseline(conn: psycopg.Connection, kind: str) -> str | None:
    """The no-AI rung (persistence, seasonal naive, climatology) with the lowest nMAE in the
    kind's latest backtest, averaged over horizons; None without a backtest."""
    row = conn.execute(_BEST_NO_AI, {"kind": kind, "all": ALL_SENSORS,
                                     "names": list(BASELINES)}).fetchone()
    return str(row[0]) if row else None


def machine_learning_increment(conn: psycopg.Connection, kind: str, model_id: str,
                               km: benefit.KindModel, avoided: benefit.Avoided,
                               accounting_baseline: str,
                               spent_kgco2e: float | None) -> dict[str, Any]:
    """What the model adds over the best no-AI forecast, not only over the accounting baseline.

    The balance credits a model with the error it removes against the accounting baseline
    (seasonal naive); a no-AI forecast (persistence, say) may already remove much of it for
    free. In the latest backtest, ``share`` = (error reduction against the best no-AI rung) /
    (error reduction against the accounting baseline); the increment is the balance's avoided
    energy and CO2 times that share (so it equals the balance when the best no-AI rung is the
    baseline itself), and its net is after the model's whole cost, use-phase compute plus the
    machine's embodied share when counted (the no-AI rungs cost next to nothing). A
    negative share means the model does worse than a no-AI forecast.
    """
    name_row = conn.execute("SELECT name FROM models WHERE model_id = %s", (model_id,)).fetchone()
    name = str(name_row[0]) if name_row else model_id
    out: dict[str, Any] = {"source": "backtest", "model_name": name,
                           "accounting_baseline": accounting_baseline}
    if name in BASELINES:
        out.update(baseline=name, is_machine_learning=False, share=0.0, avoided_kwh=0.0,
                   avoided_kgco2e=0.0, net_kgco2e=None,
                   note=f"the model is itself a no-AI forecast ({name}): machine learning adds "
                        f"nothing here, and its avoided energy needs no AI")
        return out
    best = best_no_ai_baseline(conn, kind)
    unknown = dict(baseline=best, is_machine_learning=True, share=None, avoided_kwh=None,
                   avoided_kgco2e=None, net_kgco2e=None)
    if best is None:
        out.update(unknown, note="no backtest of the kind's no-AI rungs: increment unknown")
        return out
    vs_best = backtest_reduction(conn, kind, model_id, km.error_unit, best)
    vs_base = (vs_best if best == accounting_baseline else
               backtest_reduction(conn, kind, model_id, km.error_unit, accounting_baseline))
    if vs_best is None or vs_base is None or vs_base.error_reduction <= 0:
        out.update(unknown, note=f"no backtest of the model beside '{best}' and "
                                 f"'{accounting_baseline}' with a positive reduction: "
                                 f"increment unknown")
        return out
    share = vs_best.error_reduction / vs_base.error_reduction
    kg = avoided.avoided_kgco2e * share
    out.update(baseline=best, is_machine_learning=True, share=share,
               error_reduction_vs_best=vs_best.error_reduction,
               error_reduction_vs_accounting_baseline=vs_base.error_reduction,
               error_unit=km.error_unit, evaluation_period=vs_best.evaluation_period,
               avoided_kwh=avoided.avoided_kwh * share, avoided_kgco2e=kg,
               net_kgco2e=None if spent_kgco2e is None else kg - spent_kgco2e,
               note=f"share of the error reduction against '{accounting_baseline}' that remains "
                    f"against '{best}', the best no-AI rung of the latest backtest (nMAE "
                    f"averaged over horizons), applied to the balance's avoided figures; net = "
                    f"that avoided CO2 minus the model's whole cost (compute CO2 and the "
                    f"machine's embodied share when counted)")
    return out
