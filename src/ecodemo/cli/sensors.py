"""``ecodemo sensors``: the sensor catalogue and data-quality checks."""

from __future__ import annotations

from pathlib import Path

import typer

from ecodemo.cli.common import console, settings

app = typer.Typer(help="Sensor catalogue (sensors/catalogue.yaml) and data-quality checks.",
                  no_args_is_help=True)

CATALOGUE_OPT = typer.Option(None, "--catalogue",
                             help="Catalogue file (default: sensors/catalogue.yaml).")


@app.command("list")
def list_cmd(catalogue: Path | None = CATALOGUE_OPT) -> None:
    """List the catalogue's sensors: id, kind, unit, source, enabled. Validates it too."""
    from ecodemo.sensors.catalogue import load_catalogue

    cat = load_catalogue(catalogue)
    console.print(f"{cat.path}: {len(cat.sites)} site(s), {len(cat.sensors)} sensor(s), "
                  f"{len(cat.sources)} source(s)")
    width = max(len(e.sensor_id) for e in cat.sensors) if cat.sensors else 10
    for e in cat.sensors:
        src = e.source_name or "-"
        if e.source_name and not cat.sources[e.source_name].enabled:
            src += " (source disabled)"
        console.print(f"  {e.sensor_id:<{width}}  {e.site.kind:<8} {e.unit:<12} "
                      f"{'enabled ' if e.enabled else 'disabled'}  {src}", markup=False)
    console.print("sources:")
    for name, spec in cat.sources.items():
        state = "enabled" if spec.enabled else "disabled"
        console.print(f"  {name:<28} {spec.connector:<12} {state}  {spec.description or ''}",
                      markup=False)


@app.command("register")
def register_cmd(catalogue: Path | None = CATALOGUE_OPT) -> None:
    """Validate the catalogue and write its sites and sensors to the store (idempotent)."""
    from ecodemo.sensors import stages

    res = stages.register(settings(), catalogue)
    console.print(f"{res['catalogue']}: {res['sites']} site(s), {res['sensors']} sensor(s) "
                  "registered")


@app.command("check")
def check_cmd(
    catalogue: Path | None = CATALOGUE_OPT,
    window_days: int = typer.Option(400, "--window-days", min=1,
                                    help="Days of history (before the last reading) checked."),
) -> None:
    """Validate the catalogue, then per sensor: last reading, gaps and quality flags (spikes,
    flat lines, unit mix-ups, impossible values, quarantined rows). Fills sensor_quality."""
    from ecodemo.sensors import stages

    res = stages.check_sensors(settings(), catalogue_path=catalogue, window_days=window_days)
    console.print(f"{res['catalogue']}: valid ({res['sites']} sites)")
    for s in res["sensors"]:
        if s.get("status") == "unknown sensor":
            continue
        last = (s["last_ts"] or "-")[:16]
        flags = ", ".join(f"{k} {s[k]}" for k in ("spike", "flat_line", "unit_suspect",
                                                  "impossible") if s.get(k))
        gap = f"{s['n_gaps']} gap(s)" + (f" (longest {s['longest_gap_h']:g} h)"
                                         if s.get("longest_gap_h") else "")
        console.print(f"  {s['status']:<7} {s['sensor_id']}: {s['n_readings']:,} readings, last "
                      f"{last}, {gap}, {s['n_quarantined']:,} quarantined"
                      + (f"; flags: {flags}" if flags else ""), markup=False)
