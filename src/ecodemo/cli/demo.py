"""``ecodemo demo``: the whole pipeline on the bundled real snapshot."""

from __future__ import annotations

from pathlib import Path

import typer

from ecodemo.cli.common import console, settings


def demo(
    workdir: Path = typer.Option(Path("demo-output"), "--workdir",
                                 help="Where report.html, dashboards/ and summary.json go."),
) -> None:
    """Run the pipeline on the bundled snapshot: ingest, model ladder, forecast, balance."""
    from ecodemo.demo import run_demo

    cfg = settings()
    result = run_demo(cfg, workdir, echo=console.print)
    console.print(f"outputs in {result}")
