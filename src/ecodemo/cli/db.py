"""``ecodemo db``: schema migrations and status."""

from __future__ import annotations

import typer

from ecodemo.cli.common import console, database, settings
from ecodemo.store import migrate

app = typer.Typer(help="Database schema: apply migrations, show status.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply pending migrations (idempotent). TimescaleDB features are used when available."""
    cfg = settings()
    with database(cfg, upgrade=False) as (db, conn):
        applied = migrate.upgrade(db.url)
        ts = migrate.timescaledb_available(conn)
    for m in applied:
        console.print(f"applied {m.version:03d}_{m.name} ({m.variant})")
    console.print(
        f"{db.label}: schema up to date ({len(applied)} migration(s) applied now; "
        f"TimescaleDB {'available' if ts else 'not available: plain PostgreSQL'})"
    )


@app.command("status")
def status() -> None:
    """Show applied and pending migrations, and what the store holds."""
    cfg = settings()
    with database(cfg, upgrade=False) as (db, conn):
        rows = migrate.status(conn)
        console.print(f"database: {db.label}")
        for m in rows:
            state = f"applied ({m.variant})" if m.applied else "pending"
            console.print(f"  {m.version:03d}_{m.name}: {state}")
        if all(m.applied for m in rows):
            for table in ("sites", "sensors", "readings", "quarantine", "weather", "models",
                          "forecasts", "compute_runs", "evaluations"):
                n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
                console.print(f"  {table}: {n[0] if n else 0:,} rows")


@app.command("retention")
def retention(
    days: int = typer.Option(..., help="Keep raw readings this many days (> 7)."),
) -> None:
    """Limit how long raw readings are kept (TimescaleDB policy, or a DELETE on PostgreSQL)."""
    cfg = settings()
    with database(cfg) as (_db, conn):
        try:
            console.print(migrate.set_retention(conn, days))
        except ValueError as exc:
            from ecodemo.errors import ConfigError

            raise ConfigError(str(exc)) from exc
