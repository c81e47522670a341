"""Shared CLI helpers: settings from the environment, the database, progress bars."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ecodemo.config import Settings, load_settings
from ecodemo.store import migrate
from ecodemo.store.connection import Database, open_database

console = Console(stderr=False, soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


@dataclass
class _State:
    debug: bool = False


state = _State()


def settings(**overrides: object) -> Settings:
    return load_settings(**overrides)


@contextmanager
def database(
    cfg: Settings, *, upgrade: bool = True
) -> Iterator[tuple[Database, psycopg.Connection]]:
    """Open the database (embedded or external), apply pending migrations, yield a connection."""
    db = open_database(cfg)
    if upgrade:
        migrate.upgrade(db.url)
    conn = db.connect(autocommit=True)
    try:
        yield db, conn
    finally:
        conn.close()


def progress_bar(*, transient: bool = False) -> Progress:
    """A progress bar on stderr, shown only on a terminal (logs and pipes get the summary)."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=err_console,
        transient=transient, disable=not err_console.is_terminal,
    )
