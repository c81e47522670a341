"""What TimescaleDB offers on a server and in one database, read from the catalogs only.

Four facts decide what ecodemo may use:

- *available*: the server has the extension's files (``pg_available_extensions``);
- *installed*: ``CREATE EXTENSION timescaledb`` ran in this database (``pg_extension``);
- *preloaded*: the server loaded TimescaleDB's loader at start (``shared_preload_libraries``).
  Without it, ``CREATE EXTENSION`` ends the session with a FATAL error, and a database that already
  has the extension silently writes hypertable rows into the parent table, so ecodemo refuses both;
- *licence*: ``timescaledb.license`` (server configuration only). ``apache`` (the Apache-2.0 build
  many managed services ship) has hypertables and ``drop_chunks`` but no compression, continuous
  aggregates or job policies.

Nothing here calls a TimescaleDB function, so detection is safe in every state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import psycopg

from ecodemo.errors import DatabaseError

# What the schema uses: no TimescaleDB; hypertables only (Apache licence); everything.
Variant = Literal["plain", "timescaledb-apache", "timescaledb"]

# Defined only by the loader library (timescaledb.so), which exists in a backend only when it was
# preloaded; the versioned module loaded by a function call does not define it. PostgreSQL hides
# unrecognised placeholders (a value in postgresql.conf without the library) from pg_settings.
_LOADER_GUC = "timescaledb.bgw_launcher_poll_time"

_DETECT_SQL = """
SELECT (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'),
       (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),
       EXISTS (SELECT 1 FROM pg_settings WHERE name = %s),
       current_setting('timescaledb.license', true)
"""


@dataclass(frozen=True)
class TimescaleState:
    """TimescaleDB on one server and database; ``license`` is None when the server sets none."""

    available_version: str | None
    installed_version: str | None
    preloaded: bool
    license: str | None

    @property
    def usable(self) -> bool:
        return self.available_version is not None and self.preloaded

    @property
    def apache_only(self) -> bool:
        return self.license == "apache"

    @property
    def variant(self) -> Variant:
        """The migration variant new migrations get on this server."""
        if not self.usable:
            return "plain"
        return "timescaledb-apache" if self.apache_only else "timescaledb"

    def describe(self) -> str:
        """One line for ``ecodemo db status``: what is installed, preloaded, licensed, used."""
        if self.available_version is None:
            return "TimescaleDB: not on this server (plain PostgreSQL tables and views)"
        licence = f"licence {self.license}" if self.license else "licence not set"
        if not self.preloaded:
            installed = (f"installed in this database ({self.installed_version})"
                         if self.installed_version else "not installed in this database")
            return (f"TimescaleDB {self.available_version}: on the server, {installed}, "
                    "NOT preloaded (add 'timescaledb' to shared_preload_libraries and restart)")
        if not self.installed_version:
            return (f"TimescaleDB {self.available_version}: on the server, preloaded, {licence}; "
                    "not installed in this database (plain PostgreSQL tables and views)")
        if self.apache_only:
            used = "hypertables only (no compression, continuous aggregates or policies)"
        else:
            used = "hypertables, compression, continuous aggregate and policies"
        return (f"TimescaleDB {self.available_version}: installed in this database "
                f"({self.installed_version}), preloaded, {licence}: {used}")


def detect(conn: psycopg.Connection) -> TimescaleState:
    """Read the state from the catalogs (works for any role that can connect)."""
    row = conn.execute(_DETECT_SQL, (_LOADER_GUC,)).fetchone()
    assert row is not None  # a SELECT without FROM always returns one row
    available, installed, preloaded, licence = row
    return TimescaleState(available, installed, bool(preloaded), licence)


def check_preloaded(state: TimescaleState, *, creating: bool, label: str) -> None:
    """Refuse a database whose extension is not preloaded, or a server that offers the extension
    without preloading it when ``creating`` a schema part that would use it."""
    if state.preloaded:
        return
    if state.installed_version:
        what = "has the timescaledb extension installed"
    elif creating and state.available_version:
        what = "offers the timescaledb extension"
    else:
        return
    raise DatabaseError(
        f"{label} {what} but does not preload it: add shared_preload_libraries = 'timescaledb' "
        "to postgresql.conf (or run timescaledb-tune), restart PostgreSQL, then rerun"
    )
