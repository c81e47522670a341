"""``ecodemo evaluate`` and ``ecodemo report``: accuracy, benefit vs cost, the export."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from ecodemo.cli.common import console, settings
from ecodemo.errors import ConfigError, InputError

PARIS = ZoneInfo("Europe/Paris")


def _when(value: str | None, name: str) -> datetime | None:
    """ISO 8601 date or time; without an offset it is Europe/Paris local time."""
    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"'{value}' is not an ISO 8601 date or time", field=name) from None
    return ts.replace(tzinfo=PARIS) if ts.tzinfo is None else ts


def _fmt(v: float | None, unit: str, digits: int = 4) -> str:
    return "NULL (not measured)" if v is None else f"{v:.{digits}g} {unit}"


def _range(pair: list[float | None] | None) -> str:
    """'[low-high]' of a figure's range; 'never' for an open end (no payback)."""
    if not pair:
        return "[range n/a]"
    return "[" + " to ".join("never" if v is None else f"{v:.3g}" for v in pair) + "]"


def evaluate(
    start: str | None = typer.Option(
        None, "--start", help="Period start, ISO 8601 (Europe/Paris if no offset). Default: "
        "live accuracy over all past forecasts; balance over the default accounting period."),
    end: str | None = typer.Option(None, "--end", help="Period end (exclusive), ISO 8601."),
    benefit_model: Path | None = typer.Option(
        None, "--benefit-model", help="YAML deep-merged over the shipped benefit model "
        "(default: ECODEMO_BENEFIT_MODEL_PATH, else the shipped defaults)."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Score past forecasts as issued against actuals, then compute the balance per kind."""
    from ecodemo.energy.stages import evaluate as run_evaluate

    cfg = settings()
    out = run_evaluate(cfg, _when(start, "start"), _when(end, "end"), benefit_model)
    if as_json:
        console.print_json(json.dumps(out, default=str))
        return
    console.print(f"live evaluation rows: {out['live_evaluation_rows']}; grid intensity applied "
                  f"to {out['grid_intensity_runs_updated']} run(s)")
    console.print(f"balance period: {out['balance_period'][0]} -> {out['balance_period'][1]} "
                  f"(benefit model: {out['benefit_model']})")
    for b in out["balances"]:
        be, cf = b["breakeven"], b.get("counterfactual") or {}
        console.print(
            f"  {b['kind']}/{b['model_id']} against {cf.get('name', '?')} "
            f"({cf.get('declared', '')}; energy {b['energy_effect']}): compute "
            f"{_fmt(b['compute_kgco2e'], 'kgCO2e')} {_range(b['compute_kgco2e_range'])} "
            f"(selection {_fmt(b['selection_kwh'], 'kWh')}), avoided "
            f"{_fmt(b['avoided_kgco2e'], 'kgCO2e')} {_range(b['avoided_kgco2e_range'])}, net "
            f"{_fmt(b['net_kgco2e'], 'kgCO2e')} {_range(b['net_kgco2e_range'])}, payback "
            + ("never (the avoided CO2 does not exceed the running cost)"
               if b["payback_hours"] is None and b["compute_kgco2e"] is not None
               else f"{_fmt(b['payback_hours'], 'h', 3)} {_range(b['payback_hours_range'])}"))
        console.print(f"    {be['statement']}")
        for sec in b.get("secondary_counterfactuals") or []:
            console.print(f"    against {sec['counterfactual']}: avoided "
                          f"{_fmt(sec.get('avoided_kgco2e'), 'kgCO2e')} "
                          f"{_range(sec.get('avoided_kgco2e_range'))}", style="dim")
        console.print(f"    method: {b['method']}", style="dim")
    for s in out["skipped"]:
        console.print(f"  skipped {s}", style="yellow")


class Format(StrEnum):
    json = "json"
    csv = "csv"
    html = "html"
    boamps = "boamps"
    pdf = "pdf"


class ReportLang(StrEnum):
    fr = "fr"
    en = "en"


def report(
    fmt: Format = typer.Option(Format.json, "--format", help="json, csv (one figure per row), "
                               "html (self-contained page, verdict first), pdf (the same "
                               "page on A4, printed by headless Chromium) or boamps "
                               "(Boavizta BoAmps JSON, one file per stage and model, into the "
                               "--out folder)."),
    out: Path | None = typer.Option(None, "--out", help="Write here instead of stdout "
                                    "(required for html and pdf)."),
    lang: ReportLang = typer.Option(ReportLang.fr, "--lang", help="Language of the html and "
                                    "pdf report: fr (default) or en."),
    benefit_model: Path | None = typer.Option(
        None, "--benefit-model", help="YAML deep-merged over the shipped benefit model."),
) -> None:
    """Export what an evaluator files: every figure with its method, source and assumptions."""
    cfg = settings()
    if fmt is Format.boamps:
        if out is None:
            raise ConfigError("--format boamps needs --out FOLDER")
        from ecodemo.energy.boamps import write_boamps
        from ecodemo.store.connection import open_database

        with open_database(cfg).connect() as conn:
            paths = write_boamps(conn, out, country=cfg.country_iso_code)
        console.print(f"wrote {len(paths)} BoAmps report(s) into {out}")
        return
    if fmt in (Format.html, Format.pdf):
        if out is None:
            raise ConfigError(f"--format {fmt.value} needs --out PATH")
        from ecodemo.dashboards.report import write_html_report, write_pdf_report

        if fmt is Format.pdf:
            write_pdf_report(cfg, out, lang.value)  # type: ignore[arg-type]
        else:
            write_html_report(cfg, out, lang.value)  # type: ignore[arg-type]
        console.print(f"wrote {out}")
        return
    from ecodemo.energy.report import build_report, to_csv, to_json

    rep = build_report(cfg, benefit_model)
    text = to_json(rep) if fmt is Format.json else to_csv(rep)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out} ({len(rep['figures'])} figures)")
