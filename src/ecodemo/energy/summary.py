"""A kind's stored balance as the demo's ``summary.json`` target fields and closing line.

Shapes (every ``*_range`` is ``[low, high]`` around the central value; None where a run was
not measured, or, for a payback's high end, where it never pays back at the low end):

- ``compute``: ``ingest_kwh``, ``selection_kwh``, ``train_kwh``, ``predict_kwh``,
  ``accounting_kwh``, ``total_kwh``, ``total_kwh_range``, ``total_kgco2e``,
  ``total_kgco2e_range``, ``measurement_bands``, ``co2_of_compute`` (how each run's CO2 and
  its intensity range were made);
- ``benefit``: ``counterfactual`` ({name, declared, why, source, protocol, error_reduction,
  error_unit, evaluation_period, error_reduction_range}), ``error_reduction_interval`` (the
  bootstrap over test origins, or None), ``energy_effect`` ('saved' | 'shifted'),
  ``avoided_kwh`` and ``avoided_kwh_range`` (saved only, else None), ``shifted_kwh`` and
  ``shifted_kwh_range`` (shifted only), ``avoided_kgco2e``, ``avoided_kgco2e_range``,
  ``secondary_counterfactuals``,
  ``breakeven`` ({parameter, value_used, unit, breakeven_value, breakeven_range, statement}),
  ``period``, ``machine_learning_increment``, ``assumptions``;
- ``embodied``: the machine's manufacturing CO2e for the runs' hours (kgCO2e, not energy):
  ``kgco2e``, ``kgco2e_range``, ``run_hours``, ``kgco2e_per_machine_hour``,
  ``manufacturing_kgco2e``, ``lifetime_years`` (each with its range), ``machine_share``,
  ``source``, ``method`` (None for a balance stored before it was counted);
- top level: ``net_kgco2e`` (avoided minus compute CO2 minus embodied), ``net_kgco2e_range``,
  ``net_kwh`` (saved only), ``payback_hours``,
  ``payback_hours_range``.
"""

from __future__ import annotations

from typing import Any

import psycopg

_LATEST = """
SELECT model_id, ingest_kwh, train_kwh, predict_kwh, compute_kwh, compute_kgco2e, avoided_kwh,
       avoided_kgco2e, net_kgco2e, payback_hours, breakeven, assumptions, method
FROM balances WHERE kind = %s
ORDER BY evaluated_at DESC, (model_id = %s) DESC LIMIT 1
"""


def target_balance(conn: psycopg.Connection, kind: str, model_id: str) -> dict[str, Any]:
    """The summary fields of the kind's latest balance (preferring ``model_id``'s)."""
    row = conn.execute(_LATEST, (kind, model_id)).fetchone()
    if row is None:
        return {"compute": {}, "benefit": {}, "net_kgco2e": None, "net_kgco2e_range": None,
                "payback_hours": None, "payback_hours_range": None, "balance_model_id": None,
                "embodied": None,
                "balance_method": "no balance stored"}
    (model, ingest, train, predict, total_kwh, total_kg, avoided_kwh, avoided_kg, net_kg,
     payback, breakeven, a, method) = row
    a = a or {}
    ranges = a.get("ranges") or {}
    comps = a.get("components") or {}
    shifted = a.get("energy_effect") == "shifted"
    return {
        "compute": {
            "ingest_kwh": ingest, "selection_kwh": (comps.get("selection") or {}).get("kwh"),
            "train_kwh": train, "predict_kwh": predict,
            "accounting_kwh": (comps.get("accounting") or {}).get("kwh"),
            "total_kwh": total_kwh, "total_kwh_range": ranges.get("compute_kwh_range"),
            "total_kgco2e": total_kg, "total_kgco2e_range": ranges.get("compute_kgco2e_range"),
            "measurement_bands": a.get("measurement_bands"),
            "co2_of_compute": a.get("co2_of_compute")},
        "benefit": {
            "counterfactual": a.get("counterfactual"),
            "error_reduction_interval": a.get("error_reduction_interval"),
            "energy_effect": a.get("energy_effect"),
            # shifted energy is moved to other producers, not saved: never an avoided kWh
            "avoided_kwh": None if shifted else avoided_kwh,
            "avoided_kwh_range": None if shifted else ranges.get("avoided_kwh_range"),
            "shifted_kwh": avoided_kwh if shifted else None,
            "shifted_kwh_range": ranges.get("avoided_kwh_range") if shifted else None,
            "avoided_kgco2e": avoided_kg,
            "avoided_kgco2e_range": ranges.get("avoided_kgco2e_range"),
            "secondary_counterfactuals": a.get("secondary_counterfactuals"),
            "breakeven": breakeven, "period": a.get("period"),
            "machine_learning_increment": a.get("machine_learning_increment"),
            "assumptions": a},
        # manufacturing CO2e of the machine for the runs' hours: CO2e, never energy
        "embodied": a.get("embodied"),
        "net_kgco2e": net_kg, "net_kgco2e_range": ranges.get("net_kgco2e_range"),
        "net_kwh": a.get("net_kwh"), "payback_hours": payback,
        "payback_hours_range": ranges.get("payback_hours_range"),
        "balance_model_id": model, "balance_method": method,
    }


def _num(v: float, digits: int = 2, sign: bool = False) -> str:
    """Fixed decimals for ordinary figures, significant figures for tiny ones (never -0.00)."""
    if v != 0 and abs(v) < 10 ** -digits:
        return f"{v:+.2g}" if sign else f"{v:.2g}"
    return f"{v:+,.{digits}f}" if sign else f"{v:,.{digits}f}"


def _r(pair: list[float | None] | None, digits: int = 2, sign: bool = False) -> str:
    if not pair:
        return ""
    return " [" + " to ".join("never" if v is None else _num(v, digits, sign)
                              for v in pair) + "]"


def closing_line(t: dict[str, Any]) -> str:
    """One line per target for the demo's end: counterfactual, ranges, selection, effect."""
    c, b = t["compute"], t["benefit"]
    cf = (b.get("counterfactual") or {}).get("name", "?")
    kwh, sel = c.get("total_kwh"), c.get("selection_kwh")
    wh_range = [None if v is None else v * 1000 for v in c.get("total_kwh_range") or []]
    spent = ("n/a (not measured)" if kwh is None else
             f"{_num(kwh * 1000, 3)} Wh{_r(wh_range, 3)}"
             + ("" if sel is None else f", of which selection {_num(sel * 1000, 3)} Wh"))
    if b.get("energy_effect") == "shifted":
        energy = (f"shifts {_num(b['shifted_kwh'], 0)} kWh{_r(b.get('shifted_kwh_range'), 0)} "
                  f"of balancing energy (not saved)" if b.get("shifted_kwh") is not None else "")
    else:
        energy = (f"saves {_num(b['avoided_kwh'], 1)} kWh{_r(b.get('avoided_kwh_range'), 1)}"
                  if b.get("avoided_kwh") is not None else "")
    kg = b.get("avoided_kgco2e")
    avoided = ("" if kg is None else
               f", avoids {_num(kg)} kgCO2e{_r(b.get('avoided_kgco2e_range'))}")
    emb = t.get("embodied") or {}
    if emb.get("kgco2e") is not None:
        spent += (f"; embodied (manufacturing) {_num(emb['kgco2e'], 3)} kgCO2e"
                  f"{_r(emb.get('kgco2e_range'), 3)}")
    net = t.get("net_kgco2e")
    net_s = ("net n/a" if net is None else
             f"net {_num(net, sign=True)} kgCO2e{_r(t.get('net_kgco2e_range'), sign=True)}")
    be = (b.get("breakeven") or {}).get("statement", "")
    return (f"  {t['kind']}: against {cf}: compute {spent}; {energy}{avoided}; {net_s}"
            + (f"; {be}" if be else "") + " (estimates; method and assumptions in summary.json)")
