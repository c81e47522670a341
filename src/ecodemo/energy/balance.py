"""Benefit versus cost per kind, model and period (``balances`` rows): the arithmetic.

Spent (compute) is the whole life of the service over the period, from ``compute_runs``
(gathered by :mod:`ecodemo.energy.gather`), in five components:

- ``ingest``: collection runs in the period (a run for all kinds by the kind's share of rows);
- ``selection``: the kind's latest model ladder, every rung trained and backtested (the
  rungs not chosen included), amortised over the service life (energy x period_h / life_h);
- ``train``: the training of the version in service (the promoted one), amortised likewise;
- ``predict``: inference runs of the service in the period (not the ladder's backtests);
- ``accounting``: evaluation and reporting runs in the period, shared between the kinds,
  shown apart and counted.

CO2 per run is the grid-intensity figure where one was collected, else CodeCarbon's annual
constant. Each run's energy has a band from its measurement method (hardware counters narrow,
load x TDP estimates wide); the benefit has the ranges of the benefit model's assumptions. So
every total is a :class:`~ecodemo.energy.ranges.Span` (low, central, high)::

    net_kgco2e        = avoided_kgco2e - compute_kgco2e     (low = avoided low - compute high)
    payback_hours     = one-off CO2 (selection + training) / (avoided rate - running rate)
    break-even        = the key assumption's value at which net = 0 (central, low, high)

A ``shifted`` lever (renewables' balancing energy, moved to other producers) never enters a kWh
net: only its CO2 difference is avoided. A run whose energy was not measured is never counted as
0: its component, and every total built on it, is NULL, and the method says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from ecodemo.energy.benefit import Avoided
from ecodemo.energy.embodied import Embodied
from ecodemo.energy.ranges import Span, as_dict, pair
from ecodemo.store import balances

#: relative band (+/-) of an energy measured by a method (text of ``compute_runs``)
Band = Callable[[str | None], float]


def default_band(method: str | None) -> float:
    """The shipped benefit model's bands (hardware counters vs estimated)."""
    from ecodemo.energy.benefit import load_benefit_model

    return load_benefit_model().accounting.band(method)[0]


@dataclass
class RunRow:
    """The columns of a compute run a balance needs (energy kWh, CO2 kg; None = unmeasured)."""

    stage: str
    energy_kwh: float | None
    emissions_kg: float | None
    grid_emissions_kg: float | None
    method: str | None = None
    weight: float = 1.0     # share of the run attributed to the kind (ingestion, accounting)
    # grid intensity used for grid_emissions_kg, and the lowest and highest collected values
    # the run could have been matched with (its duration +/- the matching tolerance), g/kWh
    grid_g_per_kwh: float | None = None
    grid_g_min: float | None = None
    grid_g_max: float | None = None
    duration_s: float | None = None     # run time, for the embodied share (None: unknown)

    def intensity_ratio(self, annual: Span) -> Span:
        """Relative range of the carbon intensity behind this run's CO2: the spread of the
        collected grid values around the one used, else the annual constant's range."""
        if self.grid_emissions_kg is None:
            return annual
        g, lo, hi = self.grid_g_per_kwh, self.grid_g_min, self.grid_g_max
        if not g or lo is None or hi is None:
            return Span.point(1.0)
        return Span(min(lo / g, 1.0), 1.0, max(hi / g, 1.0))


@dataclass
class Component:
    """Energy and CO2 of one part of the compute for a balance.

    ``kwh``/``kgco2e`` are after amortisation or sharing (``factor``), with their spans;
    None when any run in it was not measured. ``kwh_measured_part`` is the sum over the
    measured runs only (a lower bound, reported, never used as the total).
    """

    name: str
    kwh_span: Span | None
    kgco2e_span: Span | None
    factor: Span
    n_runs: int
    n_unmeasured: int = 0
    kgco2e_annual_constant: float | None = None
    n_grid_intensity: int = 0
    kwh_measured_part: float = 0.0
    one_off_span: Span | None = None        # before amortisation (selection and training)
    note: str = ""
    # run hours, weighted and factored like the energy (embodied share); None: a duration unknown
    hours_span: Span | None = None

    @property
    def kwh(self) -> float | None:
        return _central(self.kwh_span)

    @property
    def kgco2e(self) -> float | None:
        return _central(self.kgco2e_span)

    @property
    def one_off_kgco2e(self) -> float | None:
        return _central(self.one_off_span)

    def unknown(self, why: str) -> None:
        """No record of what this part cost: unknown, not free."""
        self.kwh_span = self.kgco2e_span = self.one_off_span = self.hours_span = None
        self.kgco2e_annual_constant = None
        self.n_unmeasured += 1
        self.note = f"{why}; {self.note}"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kwh": self.kwh, "kwh_range": pair(self.kwh_span),
                "kgco2e": self.kgco2e, "kgco2e_range": pair(self.kgco2e_span),
                "factor": self.factor.central, "factor_range": self.factor.pair(),
                "n_runs": self.n_runs, "n_unmeasured": self.n_unmeasured,
                "kgco2e_annual_constant": self.kgco2e_annual_constant,
                "n_grid_intensity": self.n_grid_intensity,
                "kwh_measured_part": self.kwh_measured_part,
                "one_off_kgco2e": self.one_off_kgco2e,
                "one_off_kgco2e_range": pair(self.one_off_span),
                "run_hours_range": pair(self.hours_span), "note": self.note}


def _banded(value: float, width: float) -> Span:
    return Span(value * (1 - width), value, value * (1 + width))


def component(name: str, runs: list[RunRow], factor: Span | float = 1.0, note: str = "",
              band: Band | None = None, annual_intensity: Span | None = None) -> Component:
    """Sum runs (each weighted and banded by its method), times ``factor``; NULL if any run
    is unmeasured. Each run's CO2 is also widened by the range of its carbon intensity
    (:meth:`RunRow.intensity_ratio`; ``annual_intensity``: relative range of CodeCarbon's
    annual constant, a point when None)."""
    band = band or default_band
    annual = annual_intensity or Span.point(1.0)
    f = factor if isinstance(factor, Span) else Span.point(float(factor))

    def is_measured(r: RunRow) -> bool:
        return r.energy_kwh is not None and r.emissions_kg is not None

    measured = [r for r in runs if is_measured(r)]
    kwh = kg = Span.point(0.0)
    kg_annual = 0.0
    for r in measured:
        w = band(r.method)
        kwh = kwh + _banded(r.weight * (r.energy_kwh or 0.0), w)
        co2 = r.grid_emissions_kg if r.grid_emissions_kg is not None else r.emissions_kg
        kg = kg + _banded(r.weight * (co2 or 0.0), w) * r.intensity_ratio(annual)
        kg_annual += r.weight * (r.emissions_kg or 0.0)
    complete = len(measured) == len(runs)
    hours = (None if any(r.duration_s is None for r in runs) else
             Span.point(sum(r.weight * (r.duration_s or 0.0) for r in runs) / 3600.0) * f)
    return Component(
        name=name, kwh_span=kwh * f if complete else None,
        kgco2e_span=kg * f if complete else None, factor=f, n_runs=len(runs),
        n_unmeasured=len(runs) - len(measured),
        kgco2e_annual_constant=kg_annual * f.central if complete else None,
        n_grid_intensity=sum(1 for r in measured if r.grid_emissions_kg is not None),
        kwh_measured_part=kwh.central * f.central, one_off_span=kg if complete else None,
        note=note, hours_span=hours)


def _central(span: Span | None) -> float | None:
    return None if span is None else span.central


def _total(spans: list[Span | None]) -> Span | None:
    if any(s is None for s in spans):
        return None
    out = Span.point(0.0)
    for s in spans:
        out = out + s  # type: ignore[operator]
    return out


def _payback(one_off: float, avoided: float, running: float, hours: float) -> float | None:
    rate = (avoided - running) / hours
    return one_off / rate if rate > 0 else None


@dataclass
class Balance:
    kind: str
    model_id: str
    period_start: datetime
    period_end: datetime
    ingest: Component
    selection: Component
    train: Component
    predict: Component
    accounting: Component
    avoided: Avoided
    key_name: str
    key_value: float
    method: str
    key_unit: str = "1"
    assumptions: dict[str, Any] = field(default_factory=dict)
    # manufacturing CO2e of the machine for the runs' hours (kgCO2e, not energy); None: not
    # counted (then net, ratio and break-even are the use phase's alone)
    embodied: Embodied | None = None

    @property
    def period_h(self) -> float:
        return (self.period_end - self.period_start).total_seconds() / 3600.0

    @property
    def parts(self) -> list[Component]:
        return [self.ingest, self.selection, self.train, self.predict, self.accounting]

    @property
    def compute_kwh_span(self) -> Span | None:
        return _total([c.kwh_span for c in self.parts])

    @property
    def compute_kgco2e_span(self) -> Span | None:
        return _total([c.kgco2e_span for c in self.parts])

    @property
    def compute_kwh(self) -> float | None:
        return _central(self.compute_kwh_span)

    @property
    def compute_kgco2e(self) -> float | None:
        return _central(self.compute_kgco2e_span)

    @property
    def run_hours_span(self) -> Span | None:
        return _total([c.hours_span for c in self.parts])

    @property
    def spent_kgco2e_span(self) -> Span | None:
        """Use-phase CO2 of compute plus the embodied share when it is counted."""
        if self.embodied is None:
            return self.compute_kgco2e_span
        return _total([self.compute_kgco2e_span, self.embodied.kgco2e_span])

    @property
    def spent_kgco2e(self) -> float | None:
        return _central(self.spent_kgco2e_span)

    @property
    def net_kgco2e_span(self) -> Span | None:
        c = self.spent_kgco2e_span
        return None if c is None else self.avoided.kgco2e_span - c

    @property
    def net_kgco2e(self) -> float | None:
        return _central(self.net_kgco2e_span)

    @property
    def net_kwh_span(self) -> Span | None:
        """Only for energy saved: shifted energy never enters a kWh net."""
        c = self.compute_kwh_span
        if c is None or self.avoided.energy_effect != "saved":
            return None
        return self.avoided.kwh_span - c

    @property
    def net_kwh(self) -> float | None:
        return _central(self.net_kwh_span)

    @property
    def ratio(self) -> float | None:
        c = _central(self.spent_kgco2e_span)
        return None if c is None or c <= 0 else self.avoided.avoided_kgco2e / c

    def _one_off_and_running(self) -> tuple[Span, Span] | None:
        one_off = _total([self.selection.one_off_span, self.train.one_off_span])
        # the embodied share accrues with the hours used: counted as running
        running = _total([self.ingest.kgco2e_span, self.predict.kgco2e_span,
                          self.accounting.kgco2e_span]
                         + ([] if self.embodied is None else [self.embodied.kgco2e_span]))
        return None if one_off is None or running is None else (one_off, running)

    @property
    def payback_hours(self) -> float | None:
        parts = self._one_off_and_running()
        if parts is None:
            return None
        one_off, running = parts
        return _payback(one_off.central, self.avoided.avoided_kgco2e, running.central,
                        self.period_h)

    @property
    def payback_hours_range(self) -> list[float | None] | None:
        """[shortest, longest]: shortest with the most avoided and the least compute; the
        longest is None when the service never pays back at the low end of the ranges."""
        parts = self._one_off_and_running()
        if parts is None:
            return None
        one_off, running = parts
        av = self.avoided.kgco2e_span
        return [_payback(one_off.low, av.high, running.low, self.period_h),
                _payback(one_off.high, av.low, running.high, self.period_h)]

    @property
    def breakeven_value(self) -> float | None:
        c, per_unit = _central(self.spent_kgco2e_span), self.avoided.kgco2e_per_unit_key
        if c is None or per_unit <= 0:
            return None
        return c / per_unit

    def breakeven_range(self) -> list[float | None] | None:
        c, pu = self.spent_kgco2e_span, self.avoided.per_unit_key_span
        if c is None or pu.high <= 0:
            return None
        return [c.low / pu.high, c.high / pu.low if pu.low > 0 else None]

    def unmeasured_runs(self) -> int:
        return sum(c.n_unmeasured for c in self.parts)

    def breakeven(self) -> dict[str, Any]:
        value = self.breakeven_value
        out: dict[str, Any] = {"parameter": self.key_name, "value_used": self.key_value,
                               "unit": self.key_unit, "breakeven_value": value,
                               "breakeven_range": self.breakeven_range(),
                               "meaning": "value of the key assumption at which net = 0 "
                                          "(avoided CO2 = compute CO2 + embodied share over "
                                          "the period)"}
        if self.spent_kgco2e_span is None:
            out["why_none"] = ("compute CO2 unknown: a run's energy or duration was not "
                               "measured")
        elif self.avoided.kgco2e_per_unit_key <= 0:
            out["why_none"] = ("the model does not beat the counterfactual (or the lever "
                               "avoids no CO2): no value of the key makes the balance positive")
        out["statement"] = breakeven_statement(self.key_name, self.key_unit, value,
                                               self.key_value, out.get("why_none"))
        return out

    def ranges(self) -> dict[str, Any]:
        return {"avoided_kwh_range": self.avoided.kwh_span.pair(),
                "avoided_kgco2e_range": self.avoided.kgco2e_span.pair(),
                "compute_kwh_range": pair(self.compute_kwh_span),
                "compute_kgco2e_range": pair(self.compute_kgco2e_span),
                "net_kgco2e_range": pair(self.net_kgco2e_span),
                "net_kwh_range": pair(self.net_kwh_span),
                "embodied_kgco2e_range": (None if self.embodied is None
                                          else pair(self.embodied.kgco2e_span)),
                "payback_hours_range": self.payback_hours_range}

    def as_row(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "model_id": self.model_id, "period_start": self.period_start,
            "period_end": self.period_end, "ingest_kwh": self.ingest.kwh,
            "train_kwh": self.train.kwh, "predict_kwh": self.predict.kwh,
            "compute_kwh": self.compute_kwh, "compute_kgco2e": self.compute_kgco2e,
            "avoided_kwh": self.avoided.avoided_kwh, "avoided_kgco2e": self.avoided.avoided_kgco2e,
            "net_kgco2e": self.net_kgco2e, "benefit_cost_ratio": self.ratio,
            "payback_hours": self.payback_hours,
            "breakeven": json.dumps(self.breakeven(), default=str), "method": self.method,
            "assumptions": json.dumps(self.full_assumptions(), default=str),
        }

    def full_assumptions(self) -> dict[str, Any]:
        return {
            **self.assumptions,
            "period_h": self.period_h,
            "error_reduction": self.avoided.error_reduction,
            "error_reduction_range": pair(self.avoided.error_reduction_span),
            "energy_effect": self.avoided.energy_effect,
            "net_kwh": self.net_kwh,
            "ranges": self.ranges(),
            "avoided_kgco2e_span": as_dict(self.avoided.kgco2e_span),
            "unmeasured_runs": self.unmeasured_runs(),
            "components": {c.name: c.as_dict() for c in self.parts},
            "embodied": None if self.embodied is None else self.embodied.as_dict(),
        }


def breakeven_statement(key: str, unit: str, value: float | None, used: float,
                        why_none: str | None) -> str:
    """The break-even in words, for the report's verdict."""
    if value is None:
        return f"no break-even value: {why_none}"
    if unit == "1":
        return (f"this service pays back if at least {value * 100:.2g} % of the forecast error "
                f"is acted on ({key}; assumed {used * 100:.3g} %)")
    return f"this service pays back if {key} is at least {value:.3g} {unit} (assumed {used:g})"


def upsert_balance(conn: psycopg.Connection, balance: Balance) -> None:
    """Store a balance through the table's one writer (:mod:`ecodemo.store.balances`)."""
    balances.upsert_balance_row(conn, balance.as_row())
