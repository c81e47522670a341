"""``ecodemo ingest``: load readings into the store."""

from __future__ import annotations

from pathlib import Path

import typer

from ecodemo.cli.common import console, database, progress_bar, settings
from ecodemo.errors import InputError
from ecodemo.store.ingest import ingest_csv
from ecodemo.store.sites import register_sites_csv

app = typer.Typer(help="Ingest readings (idempotent: re-running changes nothing).",
                  no_args_is_help=True)


@app.command("csv")
def csv_cmd(
    path: Path = typer.Argument(
        ..., help="Long-format CSV: timestamp,site_id,value,unit (.gz ok)."),
    sites: Path | None = typer.Option(
        None, "--sites", help="Register sites/sensors first from a sites file "
        "(site_id,name,kind,latitude,longitude,unit[,timezone,capacity,resolution])."),
) -> None:
    """Ingest a long-format CSV. Bad rows go to quarantine with their reason; good rows land."""
    if not path.is_file():
        raise InputError("file not found", source=str(path))
    cfg = settings()
    with database(cfg) as (db, conn):
        if sites is not None:
            n = register_sites_csv(conn, sites)
            console.print(f"registered {n} site(s) from {sites}")
        with progress_bar() as bar:
            task = bar.add_task(f"ingest {path.name}", total=1.0, detail="")
            counts = ingest_csv(
                conn, path, batch_rows=cfg.ingest_batch_rows,
                progress=lambda frac, c: bar.update(task, completed=frac,
                                                    detail=f"{c.read:,} rows"),
            )
    console.print(f"{path}: {counts.summary()} in {counts.seconds:.1f} s ({db.label})")
    for reason, n in sorted(counts.reasons.items(), key=lambda kv: -kv[1]):
        console.print(f"  quarantined {n:,}: {reason}")
