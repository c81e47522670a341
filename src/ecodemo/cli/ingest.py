"""``ecodemo ingest``: load readings into the store."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import typer

from ecodemo.cli.common import console, database, progress_bar, settings
from ecodemo.errors import InputError
from ecodemo.store.ingest import ingest_csv, refresh_hourly_span
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
        # transient: on an error, the one-line message is all that stays on screen
        with progress_bar(transient=True) as bar:
            task = bar.add_task(f"ingest {path.name}", total=1.0, detail="")
            counts = ingest_csv(
                conn, path, batch_rows=cfg.ingest_batch_rows,
                progress=lambda frac, c: bar.update(task, completed=frac,
                                                    detail=f"{c.read:,} rows"),
            )
        console.print(f"{path}: {counts.summary()} in {counts.seconds:.1f} s ({db.label})")
        # History older than the hourly aggregate's refresh window: its policy never gets
        # there, so materialise it now (TimescaleDB only; seconds per million rows).
        t0 = time.perf_counter()
        window = refresh_hourly_span(conn, counts.first_written, counts.last_written)
        if window is not None:
            lo, hi = (w.astimezone(UTC) for w in window)
            console.print(f"readings_hourly refreshed from {lo:%Y-%m-%d %H:%M} to "
                          f"{hi:%Y-%m-%d %H:%M} UTC (older than its policy's window) "
                          f"in {time.perf_counter() - t0:.1f} s")
    for reason, n in sorted(counts.reasons.items(), key=lambda kv: -kv[1]):
        console.print(f"  quarantined {n:,}: {reason}")


# --------------------------------------------------------------------------- connectors

CATALOGUE_OPT = typer.Option(None, "--catalogue",
                             help="Catalogue file (default: sensors/catalogue.yaml).")
START_OPT = typer.Option(None, "--start", help="Fetch from this time (ISO 8601; UTC if no "
                         "offset). Default: after the last stored reading (incremental).")
END_OPT = typer.Option(None, "--end", help="Fetch up to this time (exclusive; ISO 8601).")


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"'{text}' is not an ISO 8601 date/time", field=option) from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _SourceCommand:
    """One ``ecodemo ingest <name> SOURCE`` command: a one-shot run of a catalogue source."""

    name: str
    connector: str
    default_source: str | None   # None: the source must be named
    source_help: str
    summary: str                 # the command's --help
    interval: bool = True        # takes --start/--end


SOURCE_COMMANDS = (
    _SourceCommand("opendatasoft", "opendatasoft", None,
                   "Catalogue source using the opendatasoft connector (e.g. paris-bike, "
                   "paris-road, odre-eco2mix-regional, odre-eco2mix-national-co2).",
                   "Fetch an Opendatasoft Explore API v2.1 dataset for the source's enabled "
                   "sensors."),
    _SourceCommand("open-meteo", "open_meteo", "open-meteo",
                   "Catalogue source using open_meteo.",
                   "Fetch hourly Open-Meteo weather (archive, then forecast) at the sites' "
                   "coordinates."),
    _SourceCommand("files", "files", "drop",
                   "Catalogue source using the files connector (a drop folder).",
                   "Ingest new CSV/Parquet files of a drop folder (each file once, by content "
                   "hash).", interval=False),
    _SourceCommand("simulate", "simulator", "simulator",
                   "Catalogue source using the simulator.",
                   "Generate seeded synthetic readings for the simulator source's sensors."),
)


def _run_source(spec: _SourceCommand, source: str, start: str | None, end: str | None,
                catalogue: Path | None) -> None:
    from ecodemo.sensors import stages

    res = stages.ingest_source(settings(), source, _when(start, "--start"),
                               _when(end, "--end"), catalogue_path=catalogue,
                               connector=spec.connector)
    console.print(f"{source}: {stages.summary_line(res)}")
    for sid, c in sorted(res.get("sensors", {}).items()):
        console.print(f"  {sid}: {c['inserted']:,} inserted, {c['updated']:,} updated, "
                      f"{c['quarantined']:,} quarantined", markup=False)
    for f in res.get("files", []):
        console.print(f"  {f['file']}: {f['status']}", markup=False)
    if not res.get("enabled_in_catalogue", True):
        console.print(f"  (source '{source}' is disabled in the catalogue: ran because asked)")


def _source_command(spec: _SourceCommand) -> Callable[..., None]:
    """The Typer command of ``spec``: one shape for every one-shot connector."""
    source_arg = typer.Argument(spec.default_source if spec.default_source else ...,
                                help=spec.source_help)
    if spec.interval:
        def command(source: str = source_arg, start: str | None = START_OPT,
                    end: str | None = END_OPT, catalogue: Path | None = CATALOGUE_OPT) -> None:
            _run_source(spec, source, start, end, catalogue)
    else:
        def command(source: str = source_arg,  # type: ignore[misc]
                    catalogue: Path | None = CATALOGUE_OPT) -> None:
            _run_source(spec, source, None, None, catalogue)
    command.__doc__ = spec.summary
    command.__name__ = f"{spec.name.replace('-', '_')}_cmd"
    return command


for _spec in SOURCE_COMMANDS:
    app.command(_spec.name)(_source_command(_spec))


@app.command("open-meteo-previous-runs")
def open_meteo_previous_runs_cmd(
    source: str = typer.Argument("open-meteo", help="Catalogue source using open_meteo."),
    start: str | None = typer.Option(
        None, "--start", help="First day of the forecasts' valid times (ISO 8601); Open-Meteo "
        "keeps past runs from January 2024. Default: the day after each station's last "
        "backfilled hour (the source's backfill_days before --end for a new station)."),
    end: str | None = typer.Option(None, "--end", help="Last day of the valid times (ISO "
                                   "8601). Default: today (UTC)."),
    catalogue: Path | None = CATALOGUE_OPT,
) -> None:
    """Backfill weather forecasts as issued (what Open-Meteo forecast 1 and 2 days before each
    hour) at the sites' coordinates, so backtests read forecasts, not observations. The weather
    DAG (ecodemo_weather_forecasts) runs it daily without --start."""
    from ecodemo.sensors import stages

    first, last = _when(start, "--start"), _when(end, "--end") or datetime.now(UTC)
    res = stages.backfill_weather_forecasts(settings(), source, first, last,
                                            catalogue_path=catalogue)
    console.print(f"{source}: {res['written']:,} forecast values kept as issued")
    for station, n in sorted(res["stations"].items()):
        console.print(f"  {station}: {n:,}", markup=False)


@app.command("mqtt")
def mqtt_cmd(
    sources: list[str] | None = typer.Argument(
        None, help="Catalogue sources using mqtt (e.g. iot-gateway). Default: every enabled "
        "MQTT source of the catalogue, side by side (what the compose `mqtt` service runs)."),
    duration: float | None = typer.Option(None, "--duration", min=0.1,
                                          help="Stop after this many seconds (default: until "
                                          "Ctrl-C or SIGTERM)."),
    max_messages: int | None = typer.Option(None, "--max-messages", min=1,
                                            help="Stop after this many messages are stored "
                                            "(per source)."),
    catalogue: Path | None = CATALOGUE_OPT,
) -> None:
    """Subscribe to the sources' MQTT topics and store JSON uplinks (QoS 1, micro-batches,
    acknowledged after commit). Ctrl-C or SIGTERM stops cleanly: the buffer is written first,
    and what could not be is left to the broker to redeliver. Survives broker restarts
    (reconnects with the same session) and database outages (buffers, retries)."""
    import signal
    import threading

    from ecodemo.sensors import stages

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        console.print(f"{signal.Signals(signum).name}: stopping after the buffered messages")
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    res = stages.run_mqtt_sources(settings(), sources or None, duration_s=duration,
                                  max_messages=max_messages, catalogue_path=catalogue,
                                  stop=stop)
    for name, r in sorted(res["sources"].items()):
        console.print(f"{name}: {r['received']:,} message(s) received, {r['inserted']:,} "
                      f"inserted, {r['quarantined']:,} quarantined, {r['db_failures']} "
                      f"database failure(s), {r['connections']} connection(s), "
                      f"{r['left_unacknowledged']} left for redelivery", markup=False)


@app.command("all")
def all_cmd(
    start: str | None = START_OPT, end: str | None = END_OPT,
    catalogue: Path | None = CATALOGUE_OPT,
) -> None:
    """Every enabled source of the catalogue; a failing source prints one line and the
    others carry on (exit code 5 if any failed)."""
    from ecodemo.errors import SourceError
    from ecodemo.sensors import stages

    res = stages.ingest_all(settings(), _when(start, "--start"), _when(end, "--end"),
                            catalogue_path=catalogue,
                            echo=lambda line: console.print(line, markup=False))
    for name, why in res["skipped"].items():
        console.print(f"{name}: skipped ({why})", markup=False)
    if res["failed"]:
        raise SourceError(f"{len(res['failed'])} of {len(res['failed']) + len(res['ok'])} "
                          f"source(s) failed: {', '.join(res['failed'])}")
