"""Numbered SQL migrations shipped in ``ecodemo.store.migrations``.

``NNN_name.sql`` runs in one transaction. When the server offers and preloads the
``timescaledb`` extension (see ``ecodemo.store.timescale``), a twin runs instead when it exists:
``NNN_name.timescale.sql`` under the Timescale licence, ``NNN_name.apache.sql`` under the
Apache-only licence (hypertables, no compression or continuous aggregates). A file whose first line
is ``-- ecodemo: autocommit`` runs statement by statement outside a transaction (continuous
aggregates require that). All variants give the same table and view names, so the rest of the code
does not care which one ran. An advisory lock serialises concurrent upgrades.

A server that offers the extension without preloading it is refused with one line saying how to
fix it (rather than silently building plain tables that would stay plain once it is preloaded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from ecodemo.store import timescale
from ecodemo.store.connection import redact_url

_LOCK_KEY = 0x0EC0DE30  # pg_advisory_lock key for migrations
_FILE_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    plain_sql: str
    timescale_sql: str | None
    apache_sql: str | None = None

    def variant_sql(self, variant: timescale.Variant) -> tuple[str, str]:
        """(recorded variant, SQL) to run for a server's variant; the plain file when no twin."""
        if variant == "timescaledb" and self.timescale_sql is not None:
            return variant, self.timescale_sql
        if variant == "timescaledb-apache" and self.apache_sql is not None:
            return variant, self.apache_sql
        return "plain", self.plain_sql

    @property
    def has_twin(self) -> bool:
        return self.timescale_sql is not None or self.apache_sql is not None


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    name: str
    applied: bool
    variant: str | None  # 'plain' | 'timescaledb' | 'timescaledb-apache' once applied


def available_migrations() -> list[Migration]:
    pkg = resources.files("ecodemo.store.migrations")
    found: list[Migration] = []
    for entry in sorted(pkg.iterdir(), key=lambda p: p.name):
        m = _FILE_RE.match(entry.name)
        if not m:
            continue
        twin = pkg / entry.name.replace(".sql", ".timescale.sql")
        apache = pkg / entry.name.replace(".sql", ".apache.sql")
        found.append(
            Migration(
                version=int(m.group(1)),
                name=m.group(2),
                plain_sql=entry.read_text(encoding="utf-8"),
                timescale_sql=twin.read_text(encoding="utf-8") if twin.is_file() else None,
                apache_sql=apache.read_text(encoding="utf-8") if apache.is_file() else None,
            )
        )
    return found


def timescaledb_available(conn: psycopg.Connection) -> bool:
    """True when the server offers the timescaledb extension and preloads it (usable)."""
    return timescale.detect(conn).usable


def _server_variant(conn: psycopg.Connection, pending: list[Migration], url: str,
                    use_timescaledb: bool) -> timescale.Variant:
    """The variant pending migrations get; refuses a server that does not preload TimescaleDB."""
    state = timescale.detect(conn)
    wants_twin = use_timescaledb and any(m.has_twin for m in pending)
    timescale.check_preloaded(state, creating=wants_twin, label=redact_url(url))
    if not use_timescaledb:
        return "plain"
    if not wants_twin or state.variant == "plain":
        return state.variant
    # The licence is definitive once the extension is loaded: an Apache-only build may leave
    # timescaledb.license unset in the configuration.
    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    return timescale.detect(conn).variant


def _ensure_table(conn: psycopg.Connection) -> None:
    # Check first: CREATE TABLE IF NOT EXISTS needs CREATE on the schema even when the table
    # exists, and the deployment's writer role (which calls upgrade() through the CLI/tasks) has
    # no such right; for it an up-to-date schema must be a no-op, not a permission error.
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if exists and exists[0]:
        return
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version integer PRIMARY KEY,
               name text NOT NULL,
               variant text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )


def _applied(conn: psycopg.Connection) -> dict[int, str]:
    return {v: var for v, var in conn.execute("SELECT version, variant FROM schema_migrations")}


def status(conn: psycopg.Connection) -> list[MigrationStatus]:
    """Applied and pending migrations, in order."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    applied = _applied(conn) if exists and exists[0] else {}
    return [
        MigrationStatus(m.version, m.name, m.version in applied, applied.get(m.version))
        for m in available_migrations()
    ]


def _statements(sql: str) -> list[str]:
    """Split a migration on statement-ending semicolons (our files keep one per line end)."""
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*\n", body + "\n") if s.strip()]


def upgrade(url: str, *, use_timescaledb: bool = True) -> list[MigrationStatus]:
    """Apply pending migrations; idempotent. Returns the migrations applied by this call.

    ``use_timescaledb=False`` builds the plain variant even where TimescaleDB is offered (the
    scale benchmark compares both on one server)."""
    done: list[MigrationStatus] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            applied = {m.version for m in status(conn) if m.applied}
            pending = [m for m in available_migrations() if m.version not in applied]
            # Before creating anything: a refused server is left as it was found.
            server_variant = _server_variant(conn, pending, url, use_timescaledb)
            _ensure_table(conn)
            for mig in pending:
                variant, sql = mig.variant_sql(server_variant)
                if sql.lstrip().startswith("-- ecodemo: autocommit"):
                    for stmt in _statements(sql):
                        conn.execute(stmt.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, variant) VALUES (%s,%s,%s)",
                        (mig.version, mig.name, variant),
                    )
                else:
                    with conn.transaction():
                        conn.execute(sql.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, variant) "
                            "VALUES (%s,%s,%s)",
                            (mig.version, mig.name, variant),
                        )
                done.append(MigrationStatus(mig.version, mig.name, True, variant))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return done
