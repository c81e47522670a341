"""Benefit versus cost per kind, model and period (``balances`` rows).

Spent (compute), from ``compute_runs``; CO2 per run is the grid-intensity figure where one was
collected (``grid_emissions_kg``), else CodeCarbon's annual-constant figure (``emissions_kg``):

- training: the model's training runs and the kind's model-selection (backtest) runs,
  amortised over the model's service life: energy x period_h / service_life_h;
- inference: the model's predict runs that started in the period;
- ingestion: ingest runs in the period; a run for this kind counts fully, a run for all kinds
  counts by the kind's share of the rows ingested.

Avoided: the benefit model (:mod:`ecodemo.energy.benefit`) applied to the error reduction.

    net_kgco2e          = avoided_kgco2e - compute_kgco2e
    benefit_cost_ratio  = avoided_kgco2e / compute_kgco2e
    payback_hours       = one-off training CO2 / (avoided rate - running rate), where the rates
                          are kgCO2e per hour over the period (running = inference + ingestion);
                          None when the avoided rate never exceeds the running rate
    break-even          = the value of the key assumption at which net_kgco2e = 0

A run whose energy was not measured is never counted as 0: the component it belongs to, and
every total built on it, is NULL, and the method says how many runs were not measured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from ecodemo.energy.benefit import Avoided

DEV_STAGES = ("train", "backtest", "ladder")


@dataclass
class Component:
    """Energy and CO2 of one part of the compute (ingest, train or predict) for a balance.

    ``kwh``/``kgco2e`` are after amortisation or sharing (``factor``); None when any run in it
    was not measured. ``kwh_measured_part`` is the sum over the measured runs only (a lower
    bound, reported, never used as the total).
    """

    name: str
    kwh: float | None
    kgco2e: float | None
    factor: float
    n_runs: int
    n_unmeasured: int = 0
    kgco2e_annual_constant: float | None = None
    n_grid_intensity: int = 0
    kwh_measured_part: float = 0.0
    one_off_kgco2e: float | None = None     # training only: before amortisation
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class RunRow:
    """The columns of a compute run a balance needs (energy kWh, CO2 kg; None = unmeasured)."""

    stage: str
    energy_kwh: float | None
    emissions_kg: float | None
    grid_emissions_kg: float | None
    weight: float = 1.0     # share of the run attributed to the kind (ingestion)


def component(name: str, runs: list[RunRow], factor: float = 1.0, note: str = "") -> Component:
    """Sum runs (each weighted), times ``factor``; NULL if any run is unmeasured."""
    def is_measured(r: RunRow) -> bool:
        return r.energy_kwh is not None and r.emissions_kg is not None

    unmeasured = [r for r in runs if not is_measured(r)]
    measured = [r for r in runs if is_measured(r)]
    kwh_part = sum(r.weight * (r.energy_kwh or 0.0) for r in measured) * factor
    kg_grid = sum(r.weight * (r.grid_emissions_kg if r.grid_emissions_kg is not None
                              else (r.emissions_kg or 0.0)) for r in measured)
    kg_annual = sum(r.weight * (r.emissions_kg or 0.0) for r in measured)
    n_grid = sum(1 for r in measured if r.grid_emissions_kg is not None)
    complete = not unmeasured
    return Component(
        name=name, kwh=kwh_part if complete else None,
        kgco2e=kg_grid * factor if complete else None, factor=factor, n_runs=len(runs),
        n_unmeasured=len(unmeasured),
        kgco2e_annual_constant=kg_annual * factor if complete else None,
        n_grid_intensity=n_grid, kwh_measured_part=kwh_part,
        one_off_kgco2e=kg_grid if complete else None, note=note)


@dataclass
class Balance:
    kind: str
    model_id: str
    period_start: datetime
    period_end: datetime
    ingest: Component
    train: Component
    predict: Component
    avoided: Avoided
    key_name: str
    key_value: float
    method: str
    assumptions: dict[str, Any] = field(default_factory=dict)

    @property
    def period_h(self) -> float:
        return (self.period_end - self.period_start).total_seconds() / 3600.0

    @property
    def parts(self) -> list[Component]:
        return [self.ingest, self.train, self.predict]

    @property
    def compute_kwh(self) -> float | None:
        vals = [c.kwh for c in self.parts]
        return None if any(v is None for v in vals) else sum(v for v in vals if v is not None)

    @property
    def compute_kgco2e(self) -> float | None:
        vals = [c.kgco2e for c in self.parts]
        return None if any(v is None for v in vals) else sum(v for v in vals if v is not None)

    @property
    def net_kgco2e(self) -> float | None:
        c = self.compute_kgco2e
        return None if c is None else self.avoided.avoided_kgco2e - c

    @property
    def net_kwh(self) -> float | None:
        c = self.compute_kwh
        return None if c is None else self.avoided.avoided_kwh - c

    @property
    def ratio(self) -> float | None:
        c = self.compute_kgco2e
        return None if c is None or c <= 0 else self.avoided.avoided_kgco2e / c

    @property
    def payback_hours(self) -> float | None:
        one_off = self.train.one_off_kgco2e
        if one_off is None or self.ingest.kgco2e is None or self.predict.kgco2e is None:
            return None
        h = self.period_h
        rate = (self.avoided.avoided_kgco2e - self.ingest.kgco2e - self.predict.kgco2e) / h
        return one_off / rate if rate > 0 else None

    @property
    def breakeven_value(self) -> float | None:
        c, per_unit = self.compute_kgco2e, self.avoided.kgco2e_per_unit_key
        if c is None or per_unit <= 0:
            return None
        return c / per_unit

    def unmeasured_runs(self) -> int:
        return sum(c.n_unmeasured for c in self.parts)

    def breakeven(self) -> dict[str, Any]:
        out: dict[str, Any] = {"parameter": self.key_name, "value_used": self.key_value,
                               "breakeven_value": self.breakeven_value,
                               "meaning": "value of the key assumption at which net = 0 "
                                          "(avoided CO2 = compute CO2)"}
        if self.compute_kgco2e is None:
            out["why_none"] = "compute CO2 unknown: a run was not measured"
        elif self.avoided.kgco2e_per_unit_key <= 0:
            out["why_none"] = ("the model does not beat the baseline (or the lever avoids no "
                               "CO2): no value of the key makes the balance positive")
        return out

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
            "net_kwh": self.net_kwh,
            "unmeasured_runs": self.unmeasured_runs(),
            "components": {c.name: c.as_dict() for c in self.parts},
        }


_UPSERT = """
INSERT INTO balances (kind, model_id, period_start, period_end, evaluated_at, ingest_kwh,
    train_kwh, predict_kwh, compute_kwh, compute_kgco2e, avoided_kwh, avoided_kgco2e, net_kgco2e,
    benefit_cost_ratio, payback_hours, breakeven, method, assumptions)
VALUES (%(kind)s, %(model_id)s, %(period_start)s, %(period_end)s, now(), %(ingest_kwh)s,
    %(train_kwh)s, %(predict_kwh)s, %(compute_kwh)s, %(compute_kgco2e)s, %(avoided_kwh)s,
    %(avoided_kgco2e)s, %(net_kgco2e)s, %(benefit_cost_ratio)s, %(payback_hours)s,
    %(breakeven)s::jsonb, %(method)s, %(assumptions)s::jsonb)
ON CONFLICT (kind, model_id, period_start, period_end) DO UPDATE SET
    evaluated_at = EXCLUDED.evaluated_at, ingest_kwh = EXCLUDED.ingest_kwh,
    train_kwh = EXCLUDED.train_kwh, predict_kwh = EXCLUDED.predict_kwh,
    compute_kwh = EXCLUDED.compute_kwh, compute_kgco2e = EXCLUDED.compute_kgco2e,
    avoided_kwh = EXCLUDED.avoided_kwh, avoided_kgco2e = EXCLUDED.avoided_kgco2e,
    net_kgco2e = EXCLUDED.net_kgco2e, benefit_cost_ratio = EXCLUDED.benefit_cost_ratio,
    payback_hours = EXCLUDED.payback_hours, breakeven = EXCLUDED.breakeven,
    method = EXCLUDED.method, assumptions = EXCLUDED.assumptions
"""


def upsert_balance(conn: psycopg.Connection, balance: Balance) -> None:
    conn.execute(_UPSERT, balance.as_row())
    if not conn.autocommit:
        conn.commit()


# --- gathering the compute runs of a balance -------------------------------------------------

def _runs(conn: psycopg.Connection, sql: str, params: dict[str, Any]) -> list[RunRow]:
    return [RunRow(*row) for row in conn.execute(sql, params).fetchall()]


def kind_share_of_rows(conn: psycopg.Connection, kind: str, start: datetime,
                       end: datetime) -> tuple[float, str]:
    """The kind's share of readings ingested in the period (else of all readings held)."""
    row = conn.execute(
        """SELECT count(*) FILTER (WHERE s.kind = %(kind)s), count(*)
           FROM readings r JOIN sensors s USING (sensor_id)
           WHERE r.ingested_at >= %(start)s AND r.ingested_at < %(end)s""",
        {"kind": kind, "start": start, "end": end}).fetchone()
    if row and row[1]:
        return row[0] / row[1], "share of readings ingested in the period"
    row = conn.execute(
        """SELECT count(*) FILTER (WHERE s.kind = %(kind)s), count(*)
           FROM readings r JOIN sensors s USING (sensor_id)""", {"kind": kind}).fetchone()
    if row and row[1]:
        return row[0] / row[1], "share of all readings held (none ingested in the period)"
    return 0.0, "no readings held"


def gather_components(conn: psycopg.Connection, kind: str, model_id: str, start: datetime,
                      end: datetime, service_life_h: float) -> tuple[Component, Component,
                                                                     Component]:
    """Ingest, train (amortised) and predict components for one kind, model and period."""
    period_h = (end - start).total_seconds() / 3600.0
    p = {"kind": kind, "model": model_id, "start": start, "end": end,
         "dev": list(DEV_STAGES), "life": f"{service_life_h} hours"}

    # Training of this model, plus the kind's model selection (backtests) in the service life
    # before the period ended.
    dev = _runs(conn, """SELECT stage, energy_kwh, emissions_kg, grid_emissions_kg
        FROM compute_runs
        WHERE (stage = 'train' AND model_id = %(model)s)
           OR (stage = ANY(%(dev)s) AND stage <> 'train' AND sensor_kind = %(kind)s
               AND started_at < %(end)s AND started_at >= %(end)s - %(life)s::interval)""", p)
    n_train = sum(1 for r in dev if r.stage == "train")
    factor = period_h / service_life_h
    train = component("train", dev, factor,
                      note=f"{n_train} training run(s) of the model and {len(dev) - n_train} "
                           f"backtest run(s) of the kind, x {factor:.4g} = period "
                           f"{period_h:.4g} h / service life {service_life_h:.4g} h")
    if n_train == 0:
        # No record of the training: unknown, not free.
        train.kwh = train.kgco2e = train.one_off_kgco2e = train.kgco2e_annual_constant = None
        train.n_unmeasured += 1
        train.note = "no training run recorded for this model: training energy unknown; " + \
            train.note

    pred = _runs(conn, """SELECT stage, energy_kwh, emissions_kg, grid_emissions_kg
        FROM compute_runs
        WHERE stage = 'predict' AND started_at >= %(start)s AND started_at < %(end)s
          AND (model_id = %(model)s OR (model_id IS NULL AND sensor_kind = %(kind)s))""", p)
    predict = component("predict", pred,
                        note=f"{len(pred)} predict run(s) of the model started in the period")

    share, share_how = kind_share_of_rows(conn, kind, start, end)
    own_rows = _runs(conn, """SELECT stage, energy_kwh, emissions_kg, grid_emissions_kg
        FROM compute_runs
        WHERE stage = 'ingest' AND started_at >= %(start)s AND started_at < %(end)s
          AND sensor_kind = %(kind)s""", p)
    shared_rows = _runs(conn, """SELECT stage, energy_kwh, emissions_kg, grid_emissions_kg
        FROM compute_runs
        WHERE stage = 'ingest' AND started_at >= %(start)s AND started_at < %(end)s
          AND sensor_kind IS NULL""", p)
    for r in shared_rows:
        r.weight = share
    ingest = component("ingest", own_rows + shared_rows,
                       note=f"{len(own_rows)} ingest run(s) for this kind counted fully, "
                            f"{len(shared_rows)} shared run(s) x {share:.4g} ({share_how})")
    return ingest, train, predict
