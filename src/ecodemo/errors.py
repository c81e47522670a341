"""Typed errors. The library raises them; the CLI prints one line and exits non-zero."""

from __future__ import annotations

import re

# Control characters (newlines included) that input data can smuggle into a message.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]  # "\n", "\x00", ...: visible and on one line


class EcodemoError(Exception):
    """Base class: a failure the user can act on. ``str(err)`` is the one-line message: control
    characters quoted from the input (a newline in a site id, say) are shown escaped."""

    exit_code = 1

    def __str__(self) -> str:
        return _CONTROL.sub(_escape, super().__str__())


class ConfigError(EcodemoError):
    """Bad settings or a bad catalogue entry."""

    exit_code = 2


class InputError(EcodemoError):
    """Bad input file or payload (names the file, line or field)."""

    exit_code = 3

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        where = ", ".join(
            part
            for part in (
                source,
                f"line {line}" if line is not None else None,
                f"field '{field}'" if field is not None else None,
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.source = source
        self.line = line
        self.field = field


class DatabaseError(EcodemoError):
    """The database is unreachable or refused an operation."""

    exit_code = 4


class SourceError(EcodemoError):
    """A remote data source failed (timeout, HTTP error, changed payload)."""

    exit_code = 5


class ModelError(EcodemoError):
    """Training, forecasting or the registry failed (not enough data, unknown model...)."""

    exit_code = 6


class PublishError(EcodemoError):
    """Grafana publishing failed (unreachable, 401, 400...)."""

    exit_code = 7
