"""``ecodemo db``: schema migrations and status."""

from __future__ import annotations

from pathlib import Path

import typer

from ecodemo.cli.common import console, database, settings
from ecodemo.store import migrate, timescale

app = typer.Typer(help="Database schema: apply migrations, show status, purge the demo data.",
                  no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply pending migrations (idempotent).

    TimescaleDB, when the server preloads it: hypertables, compression, a continuous aggregate
    and policies; under the Apache-only licence, hypertables only; without it, plain PostgreSQL.
    A server that offers TimescaleDB without preloading it is refused (nothing is created):
    add 'timescaledb' to shared_preload_libraries, restart PostgreSQL, rerun.
    """
    cfg = settings()
    with database(cfg, upgrade=False) as (db, conn):
        applied = migrate.upgrade(db.url)
        state = timescale.detect(conn)
    for m in applied:
        console.print(f"applied {m.version:03d}_{m.name} ({m.variant})")
    console.print(
        f"{db.label}: schema up to date ({len(applied)} migration(s) applied now); "
        f"{state.describe()}"
    )


@app.command("status")
def status() -> None:
    """Show TimescaleDB's state (installed, preloaded, licence, what is used), applied and
    pending migrations, and what the store holds."""
    cfg = settings()
    with database(cfg, upgrade=False) as (db, conn):
        rows = migrate.status(conn)
        ts = timescale.detect(conn)
        console.print(f"database: {db.label}")
        console.print(f"  {ts.describe()}")
        for m in rows:
            state = f"applied ({m.variant})" if m.applied else "pending"
            console.print(f"  {m.version:03d}_{m.name}: {state}")
        # Counting a hypertable whose server does not preload TimescaleDB is not safe.
        if all(m.applied for m in rows) and not (ts.installed_version and not ts.preloaded):
            for table in ("sites", "sensors", "readings", "quarantine", "weather", "models",
                          "forecasts", "compute_runs", "evaluations"):
                n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
                console.print(f"  {table}: {n[0] if n else 0:,} rows")


@app.command("retention")
def retention(
    days: int = typer.Option(..., help="Keep raw readings this many days (> 7)."),
) -> None:
    """Limit how long raw readings are kept (TimescaleDB policy, or a DELETE on PostgreSQL)."""
    from ecodemo.store.ingest import set_retention

    cfg = settings()
    with database(cfg) as (_db, conn):
        try:
            console.print(set_retention(conn, days))
        except ValueError as exc:
            from ecodemo.errors import ConfigError

            raise ConfigError(str(exc)) from exc


@app.command("roles")
def roles(
    schema: str = typer.Option("public", help="Schema whose tables the roles may use."),
) -> None:
    """Create or update the writer and the Grafana read-only roles (idempotent).

    Names and passwords come from ECODEMO_WRITER_USER/_PASSWORD and
    ECODEMO_GRAFANA_DB_USER/_PASSWORD; with ECODEMO_AIRFLOW_DB_USER/_PASSWORD set, also the
    owner of Airflow's metadata database (ECODEMO_AIRFLOW_DB_NAME, default airflow). Run it as
    the administrator, after `ecodemo db upgrade`. Passwords are never printed.
    """
    from ecodemo.store import roles as roles_mod

    role_cfg = roles_mod.RoleSettings()
    writer, reader = roles_mod.roles_from_settings(role_cfg)
    airflow = roles_mod.airflow_role_from_settings(role_cfg)
    cfg = settings()
    with database(cfg, upgrade=False) as (db, conn):
        report = roles_mod.apply_roles(conn, writer, reader, schema=schema)
        for line in report.lines():
            console.print(line)
        if airflow is not None:
            role_state, db_state = roles_mod.ensure_owned_database(
                conn, role_cfg.airflow_db_name, airflow
            )
            console.print(
                f"Airflow metadata database {role_cfg.airflow_db_name}: {db_state}, "
                f"owned by {airflow.name} ({role_state})"
            )
    console.print(f"{db.label}: roles up to date")


@app.command("purge-demo")
def purge_demo(
    catalogue: Path | None = typer.Option(
        None, help="The deployment's catalogue (default: ECODEMO_SENSORS_DIR/catalogue.yaml); "
                   "its sites and sensors are kept."),
) -> None:
    """Take the bundled demo snapshot out of a store: its readings and weather, its sites and
    sensors unless your catalogue declares them, and what was derived from it (forecasts,
    evaluations, balances, models trained on its period, quality summaries, its ingest runs,
    quarantined rows). Your own data is not touched; running it twice deletes nothing."""
    from ecodemo.errors import ConfigError
    from ecodemo.sensors.catalogue import load_catalogue
    from ecodemo.snapshot import purge_snapshot

    cat = load_catalogue(catalogue)
    enabled = [n for n in cat.enabled_sources() if cat.sources[n].connector == "snapshot"]
    if enabled:
        raise ConfigError(f"{cat.path}: source '{enabled[0]}' still ingests the bundled "
                          "snapshot; set `enabled: false` on it first")
    cfg = settings()
    with database(cfg) as (db, conn):
        counts = purge_snapshot(conn, keep_sensor_ids=[s.sensor_id for s in cat.sensors],
                                keep_site_ids=[s.site_id for s in cat.sites])
    done = ", ".join(f"{n:,} {t}" for t, n in counts.items() if n) or "nothing to delete"
    console.print(f"{db.label}: bundled snapshot purged: {done}")
