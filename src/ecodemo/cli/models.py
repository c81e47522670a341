"""``ecodemo train|forecast|backtest|models``: the forecasting stages by hand."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from ecodemo.cli.common import console, database, settings
from ecodemo.errors import InputError

app = typer.Typer(help="The model registry: list, promote, roll back.", no_args_is_help=True)


def _kinds(cfg: Any, kind: str | None) -> list[str]:
    from ecodemo.models import stages

    with database(cfg):  # applies pending migrations
        pass
    kinds = [kind] if kind else stages.kinds_with_data(cfg)
    if not kinds:
        raise InputError("the store holds no readings: run `ecodemo ingest` first")
    return kinds


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"
    return str(v)


def print_backtest(result: dict[str, Any]) -> None:
    """The backtest JSON as a table."""
    t = Table(title=f"{result['kind']}: {result['horizon_hours']:g} h backtest, "
                    f"{result['sensors']} sensor(s), {result['folds']} origin(s)",
              box=box.SIMPLE)
    for col in ("model", "sel. nMAE", "MAE", "nMAE", "skill", "p10-p90", "day-ahead skill",
                "day-ahead p10-p90", "train_s", "train_kWh", "predict_kWh"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for m in result["models"]:
        mark = " *" if m["name"] == result["chosen"] else ""
        da = m.get("day_ahead") or {}
        t.add_row(m["name"] + mark, _fmt((m.get("selection") or {}).get("nmae")),
                  _fmt(m["mae"]), _fmt(m["nmae"]),
                  _fmt(m["skill_vs_seasonal_naive"]), _fmt(m["coverage_p10_p90"]),
                  _fmt(da.get("skill_vs_seasonal_naive")), _fmt(da.get("coverage_p10_p90")),
                  _fmt(m["train_seconds"], 2), _fmt(m["train_energy_kwh"], 2),
                  _fmt(m["predict_energy_kwh"], 2))
    Console(width=max(console.width, 140)).print(t)
    console.print("sel. nMAE: on the selection origins, where the choice is made; the other "
                  "figures are on the test origins only")
    console.print("skill: 1 - MAE / MAE of seasonal naive; p10-p90: coverage (0.8 is ideal); "
                  "day-ahead: issued at local noon for the next calendar day (leads 12-36 h)")
    proto = result.get("protocol")
    if proto:
        for part in ("selection", "test"):
            w = proto[part]
            console.print(f"{part}: {w['folds']} origins, {w['first_origin']} .. "
                          f"{w['last_origin']}")
    if result.get("weather"):
        w = result["weather"]
        console.print(f"weather: {w['provenance']}"
                      + (f" ({', '.join(w['variables'])})" if w["variables"] else ""))
    console.print(f"chosen: {result['chosen']} - {result['reason']}")
    for note in result.get("notes", []):
        console.print(f"  note: {note}")


def backtest(
    kind: str = typer.Option(..., "--kind", help="Sensor kind: solar, wind, traffic, bike..."),
    horizon: float = typer.Option(24.0, "--horizon", help="Forecast window in hours (1-48)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the backtest JSON here."),
    folds: int | None = typer.Option(None, "--folds",
                                     help="Rolling origins (default: models/specs)."),
) -> None:
    """Run the model ladder on the store's data for a kind: backtest, choose, record."""
    from ecodemo.models import stages

    if not 0 < horizon <= 48:
        raise InputError("--horizon must be between 0 and 48 hours")
    cfg = settings()
    _kinds(cfg, kind)
    result = stages.run_ladder(cfg, kind, horizon_h=horizon, folds=folds)
    print_backtest(result)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2), encoding="utf-8")
        console.print(f"wrote {json_path}")


def train(
    kind: str | None = typer.Option(None, "--kind", help="One kind (default: every kind "
                                    "with data)."),
    no_promote: bool = typer.Option(False, "--no-promote",
                                    help="Register as a candidate without promoting it."),
    rung: str | None = typer.Option(None, "--model", help="Ladder rung to train (default: "
                                    "the ladder's latest choice, else the spec default)."),
) -> None:
    """Train the chosen model per kind on all its data and register it."""
    from ecodemo.models import stages

    cfg = settings()
    for k in _kinds(cfg, kind):
        r = stages.train(cfg, k, promote=not no_promote, rung=rung)
        energy = r["train_energy_kwh"]
        console.print(f"{k}: {r['model_id']} ({r['status']}) on {r['sensors']} sensor(s), "
                      f"{r['train_seconds']:.1f} s, "
                      f"{'energy not measured' if energy is None else f'{energy:.2e} kWh'}")


def forecast(
    kind: str | None = typer.Option(None, "--kind", help="One kind (default: every kind "
                                    "with data)."),
    horizon: float = typer.Option(48.0, "--horizon", help="Hours ahead (at most 48)."),
    issued_at: datetime | None = typer.Option(
        None, "--issued-at", help="Issue time, ISO 8601 with offset (default: the kind's "
        "last reading)."),
) -> None:
    """Write the next hours' p10/p50/p90 of every sensor to `forecasts`."""
    from ecodemo.models import stages

    if not 0 < horizon <= 48:
        raise InputError("--horizon must be between 0 and 48 hours")
    if issued_at is not None and issued_at.tzinfo is None:
        raise InputError("--issued-at needs a UTC offset, e.g. 2021-09-09T23:00:00+00:00")
    cfg = settings()
    for k in _kinds(cfg, kind):
        r = stages.forecast(cfg, k, issued_at=issued_at, horizon_h=horizon)
        console.print(f"{k}: {r['rows']:,} forecast rows from {r['model_id']} issued at "
                      f"{r['issued_at']} ({r['predict_seconds']:.2f} s)")


@app.command("list")
def list_cmd(kind: str | None = typer.Option(None, "--kind", help="Only this kind.")) -> None:
    """Registered models, oldest first."""
    from ecodemo.models import registry

    with database(settings()) as (_db, conn):
        rows = registry.list_models(conn, kind)
    t = Table()
    for col in ("model_id", "kind", "name", "status", "created", "train end", "nMAE"):
        t.add_column(col)
    for r in rows:
        t.add_row(r.model_id, r.kind, r.name, r.status, r.created_at[:19],
                  (r.train_end or "-")[:19], _fmt(r.nmae))
    console.print(t)


@app.command("promote")
def promote_cmd(model_id: str = typer.Argument(..., help="Model id, e.g. bike-lgbm_small-v2.")
                ) -> None:
    """Promote a model (the kind's current one is retired)."""
    from ecodemo.models import registry

    with database(settings()) as (_db, conn):
        row = registry.promote(conn, model_id)
    console.print(f"{row.model_id} promoted for {row.kind}")


@app.command("rollback")
def rollback_cmd(kind: str = typer.Option(..., "--kind", help="Kind to roll back.")) -> None:
    """Re-promote the model promoted before the current one."""
    from ecodemo.models import registry

    with database(settings()) as (_db, conn):
        row = registry.rollback(conn, kind)
    console.print(f"{kind}: rolled back to {row.model_id}")


def register(root: typer.Typer) -> None:
    """Add ``train``, ``forecast``, ``backtest`` and the ``models`` group to the root app."""
    root.command("train")(train)
    root.command("forecast")(forecast)
    root.command("backtest")(backtest)
    root.add_typer(app, name="models")
