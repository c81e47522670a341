"""The compute runs of a balance, from ``compute_runs``: the whole life of the service.

Which runs make each component (see :mod:`ecodemo.energy.balance` for the arithmetic):

- selection: the kind's latest model-ladder choice before the period ended, and every run of
  it (each rung's training and backtest inference, the scoring): the runs of the kind started
  after the previous choice and up to this one, with stage 'backtest' or the purpose
  'ladder backtest';
- train: the training of the version in service (the kind's promoted version of the model's
  rung, else the model itself), not the ladder's fit (which is in the selection);
- predict: the service's inference runs started in the period (any version of the rung);
- ingest: collection runs in the period; a run for all kinds counts by the kind's share of rows;
- accounting: evaluate / report / publish runs in the period, split evenly between the kinds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, LiteralString

import psycopg
from psycopg import sql as pgsql

from ecodemo.energy.balance import Band, Component, RunRow, component
from ecodemo.energy.benefit import Parameter
from ecodemo.energy.grid import DEFAULT_TOLERANCE, DEFAULT_ZONE
from ecodemo.energy.ranges import Span

LADDER = "ladder backtest"      # details->>'purpose' of the ladder's train and predict runs
ACCOUNTING_STAGES = ("evaluate", "report", "publish")
# The run's columns, and the lowest and highest collected grid intensity it could have been
# matched with (ecodemo.energy.grid: the run's duration +/- the matching tolerance).
_COLUMNS = """c.stage, c.energy_kwh, c.emissions_kg, c.grid_emissions_kg, c.measurement_method,
    c.grid_intensity_g_per_kwh, w.g_min, w.g_max, c.duration_s"""
_WINDOW = """LEFT JOIN LATERAL (
    SELECT min(g.g_per_kwh) AS g_min, max(g.g_per_kwh) AS g_max FROM grid_intensity g
    WHERE c.grid_intensity_g_per_kwh IS NOT NULL AND g.zone = %(zone)s
      AND g.ts >= c.started_at - %(tol)s
      AND g.ts <= c.started_at + make_interval(secs => coalesce(c.duration_s, 0)) + %(tol)s
) w ON true"""
_SELECT = pgsql.SQL("SELECT {columns} FROM compute_runs c {window} WHERE ").format(
    columns=pgsql.SQL(_COLUMNS), window=pgsql.SQL(_WINDOW))


def _row(r: tuple[Any, ...]) -> RunRow:
    return RunRow(stage=r[0], energy_kwh=r[1], emissions_kg=r[2], grid_emissions_kg=r[3],
                  method=r[4], grid_g_per_kwh=r[5], grid_g_min=r[6], grid_g_max=r[7],
                  duration_s=r[8])


def _runs(conn: psycopg.Connection, where: LiteralString,
          params: dict[str, Any]) -> list[RunRow]:
    query = _SELECT + pgsql.SQL(where)   # both constants of this module
    return [_row(row) for row in conn.execute(query, params).fetchall()]


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


def service_model(conn: psycopg.Connection, kind: str, model_id: str) -> str:
    """The version in service: the kind's promoted version of the model's rung, else itself."""
    row = conn.execute(
        """SELECT p.model_id FROM models m JOIN models p ON p.kind = m.kind AND p.name = m.name
           WHERE m.model_id = %s AND p.kind = %s AND p.status = 'promoted'
           ORDER BY p.version DESC LIMIT 1""", (model_id, kind)).fetchone()
    return str(row[0]) if row else model_id


_SELECTION = pgsql.SQL("""
WITH choice AS (
    SELECT decided_at, lag(decided_at) OVER (ORDER BY decided_at) AS prev
    FROM model_choices WHERE kind = %(kind)s AND decided_at < %(end)s
    ORDER BY decided_at DESC LIMIT 1)
SELECT {columns}
FROM choice, compute_runs c {window}
WHERE c.sensor_kind = %(kind)s AND c.started_at <= choice.decided_at
  AND (choice.prev IS NULL OR c.started_at > choice.prev)
  AND (c.stage = 'backtest'
       OR (c.stage IN ('train', 'predict') AND c.details->>'purpose' = %(ladder)s))
""").format(columns=pgsql.SQL(_COLUMNS), window=pgsql.SQL(_WINDOW))


def gather_components(conn: psycopg.Connection, kind: str, model_id: str, start: datetime,
                      end: datetime, service_life_h: Parameter | float, *, n_kinds: int = 1,
                      band: Band | None = None,
                      inference_cadence_h: float | None = None,
                      annual_intensity: Parameter | None = None,
                      zone: str = DEFAULT_ZONE) -> dict[str, Component]:
    """The five components of one kind's balance for ``model_id`` over ``[start, end)``.

    With ``inference_cadence_h``, inference is counted at that cadence when fewer runs than it
    implies were recorded: the measured runs' energy x (expected runs / recorded runs).
    ``annual_intensity`` is the relative range of CodeCarbon's annual intensity (runs with no
    grid value); runs with one take the spread of the values collected in ``zone`` around it.
    """
    annual = None if annual_intensity is None else annual_intensity.span()
    period_h = (end - start).total_seconds() / 3600.0
    life = (service_life_h.span() if isinstance(service_life_h, Parameter)
            else Span.point(float(service_life_h)))
    # amortised over the service life: the shortest life gives the highest share
    factor = Span(period_h / life.high, period_h / life.central, period_h / life.low)
    amortised = (f"x {factor.central:.4g} = period {period_h:.4g} h / service life "
                 f"{life.central:.4g} h (range {life.low:.4g}-{life.high:.4g} h)")
    service = service_model(conn, kind, model_id)
    p = {"kind": kind, "model": model_id, "service": service, "start": start, "end": end,
         "ladder": LADDER, "stages": list(ACCOUNTING_STAGES), "zone": zone,
         "tol": DEFAULT_TOLERANCE}

    sel_rows = [_row(r) for r in conn.execute(_SELECTION, p).fetchall()]
    selection = component(
        "selection", sel_rows, factor, band=band, annual_intensity=annual,
        note=f"{len(sel_rows)} run(s) of the kind's latest model-ladder choice (every rung "
             f"trained and backtested, the rungs not chosen included) {amortised}"
             if sel_rows else "no model-ladder choice recorded for the kind: nothing was "
                              "compared, so there is no selection cost")

    train_rows = _runs(conn, """c.stage = 'train' AND c.model_id = %(service)s
        AND coalesce(c.details->>'purpose', '') <> %(ladder)s""", p)
    train = component("train", train_rows, factor, band=band, annual_intensity=annual,
                      note=f"{len(train_rows)} training run(s) of {service}, the version in "
                           f"service, {amortised}")
    if not train_rows:
        fitted_in_ladder = conn.execute(
            "SELECT 1 FROM compute_runs WHERE stage = 'train' AND model_id = %s LIMIT 1",
            (service,)).fetchone()
        if fitted_in_ladder and sel_rows:
            train.note = (f"{service} was fitted by the model ladder: its training is counted "
                          f"in the selection")
        else:
            train.unknown(f"no training run recorded for {service}: training energy unknown")

    pred = _runs(conn, """c.stage = 'predict' AND c.started_at >= %(start)s
        AND c.started_at < %(end)s AND coalesce(c.details->>'purpose', '') <> %(ladder)s
        AND (c.model_id = %(model)s OR c.model_id IN (
             SELECT v.model_id FROM models m JOIN models v ON v.kind = m.kind
                    AND v.name = m.name WHERE m.model_id = %(model)s))""", p)
    expected = period_h / inference_cadence_h if inference_cadence_h else 0.0
    scale = expected / len(pred) if pred and expected > len(pred) else 1.0
    predict = component("predict", pred, scale, band=band, annual_intensity=annual,
                        note=f"{len(pred)} inference run(s) of the service (any version of "
                             f"the rung) started in the period; ladder backtests excluded"
                             + (f"; counted at the service's cadence of one run every "
                                f"{inference_cadence_h:g} h: x {scale:.4g} ({expected:.4g} "
                                f"runs in the period)" if scale != 1.0 else ""))

    share, share_how = kind_share_of_rows(conn, kind, start, end)
    own = _runs(conn, """c.stage = 'ingest' AND c.started_at >= %(start)s
        AND c.started_at < %(end)s AND c.sensor_kind = %(kind)s""", p)
    shared = _runs(conn, """c.stage = 'ingest' AND c.started_at >= %(start)s
        AND c.started_at < %(end)s AND c.sensor_kind IS NULL""", p)
    for r in shared:
        r.weight = share
    ingest = component("ingest", own + shared, band=band, annual_intensity=annual,
                       note=f"{len(own)} collection run(s) for this kind counted fully, "
                            f"{len(shared)} shared run(s) x {share:.4g} ({share_how})")

    acc = _runs(conn, """c.stage = ANY(%(stages)s) AND c.started_at >= %(start)s
        AND c.started_at < %(end)s""", p)
    for r in acc:
        r.weight = 1.0 / max(n_kinds, 1)
    accounting = component("accounting", acc, band=band, annual_intensity=annual,
                           note=f"{len(acc)} evaluation/reporting run(s) in the period, split "
                                f"evenly between {n_kinds} kind(s); shown apart, counted")
    return {"ingest": ingest, "selection": selection, "train": train, "predict": predict,
            "accounting": accounting}
