"""Expand a panel's SQL the way Grafana 11 does for the PostgreSQL datasource.

Used by the tests (every panel query runs against a real database) and handy to paste a panel's
query into psql. Order, as in Grafana: (1) the frontend replaces template variables;
(2) the backend replaces ``$__interval_ms``, ``$__interval`` and ``$__unixEpochFrom/To()``;
(3) macros ``$__name(args)`` are expanded (pkg/tsdb/grafana-postgresql-datasource/macros.go).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_VAR = re.compile(r"\$\{([A-Za-z0-9_]+)(?::([a-z]+))?\}|\$([A-Za-z0-9_]+)")

# Grafana's rangeutil.roundInterval: (upper bound ms, rounded interval ms)
_ROUND: tuple[tuple[float, int], ...] = (
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500),
    (1_500, 1_000), (3_500, 2_000), (7_500, 5_000), (12_500, 10_000), (17_500, 15_000),
    (25_000, 20_000), (45_000, 30_000), (90_000, 60_000), (210_000, 120_000),
    (450_000, 300_000), (750_000, 600_000), (1_050_000, 900_000), (1_500_000, 1_200_000),
    (2_700_000, 1_800_000), (5_400_000, 3_600_000), (9_000_000, 7_200_000),
    (16_200_000, 10_800_000), (24_300_000, 21_600_000), (64_800_000, 43_200_000),
    (129_600_000, 86_400_000), (604_800_000, 604_800_000), (1_814_400_000, 2_592_000_000),
    (math.inf, 31_536_000_000),
)
_UNITS = (("y", 31_536_000_000), ("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000),
          ("m", 60_000), ("s", 1_000), ("ms", 1))


def grafana_time(dt: datetime) -> str:
    """Go's RFC3339Nano in UTC, as Grafana writes ``$__timeFrom()``: fraction trimmed."""
    dt = dt.astimezone(UTC)
    frac = f"{dt.microsecond:06d}".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def parse_interval(text: str) -> int:
    """'1h' -> 3600000 ms (Grafana's interval strings)."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d|w|y)", text.strip().strip("'\""))
    if not m:
        raise ValueError(f"unsupported interval '{text}'")
    return int(m.group(1)) * dict(_UNITS)[m.group(2)]


def format_interval(ms: int) -> str:
    """gtime.FormatInterval: the largest unit that divides the interval, floored."""
    for unit, size in _UNITS:
        if ms >= size:
            return f"{ms // size}{unit}"
    return "1ms"


def panel_interval_ms(start: datetime, end: datetime, max_data_points: int = 1000,
                      min_interval: str | None = None) -> int:
    """``$__interval`` in ms: range / data points, rounded as Grafana does, at least the
    panel's minimum interval."""
    raw = (end - start).total_seconds() * 1000 / max(max_data_points, 1)
    rounded = next(r for bound, r in _ROUND if raw <= bound)
    if min_interval:
        rounded = max(rounded, parse_interval(min_interval))
    return int(rounded)


@dataclass(frozen=True)
class Variable:
    """A template variable's state: selected values, and whether it formats as multi."""

    values: Sequence[str]
    multi: bool = True

    def format(self, fmt: str | None) -> str:
        def quote(v: str) -> str:
            return "'" + v.replace("'", "''") + "'"

        if fmt == "sqlstring":
            return ",".join(quote(v) for v in self.values)
        if fmt in ("csv", "raw"):
            return ",".join(self.values)
        if self.multi:
            return ",".join(quote(v) for v in self.values)
        return self.values[0].replace("'", "''") if self.values else ""


@dataclass(frozen=True)
class QueryContext:
    start: datetime
    end: datetime
    variables: Mapping[str, Variable] = field(default_factory=dict)
    interval_ms: int = 60_000
    timescaledb: bool = False


def _time_group(args: list[str], ctx: QueryContext) -> str:
    if len(args) < 2:
        raise ValueError("$__timeGroup needs a column and an interval")
    col, secs = args[0], parse_interval(args[1]) / 1000
    if ctx.timescaledb:
        return f"time_bucket('{secs:.3f}s',{col})"
    return f"floor(extract(epoch from {col})/{secs:g})*{secs:g}"


def expand(sql: str, ctx: QueryContext) -> str:
    """The SQL Grafana would send to PostgreSQL for this panel target."""

    def var(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        if name.startswith("__") or name not in ctx.variables:
            return m.group(0)
        return ctx.variables[name].format(m.group(2))

    sql = _VAR.sub(var, sql)
    sql = sql.replace("$__interval_ms", str(ctx.interval_ms))
    sql = sql.replace("$__interval", format_interval(ctx.interval_ms))
    sql = sql.replace("$__unixEpochFrom()", str(int(ctx.start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(ctx.end.timestamp())))
    t_from, t_to = grafana_time(ctx.start), grafana_time(ctx.end)

    def macro(m: re.Match[str]) -> str:
        name = m.group(1)
        args = [a.strip() for a in m.group(2).split(",")] if m.group(2).strip() else []
        if name == "__time":
            return f'{args[0]} AS "time"'
        if name == "__timeEpoch":
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{t_from}' AND '{t_to}'"
        if name == "__timeFrom":
            return f"'{t_from}'"
        if name == "__timeTo":
            return f"'{t_to}'"
        if name == "__timeGroup":
            return _time_group(args, ctx)
        if name == "__timeGroupAlias":
            return _time_group(args, ctx) + ' AS "time"'
        if name == "__unixEpochFilter":
            return (f"{args[0]} >= {int(ctx.start.timestamp())} AND "
                    f"{args[0]} <= {int(ctx.end.timestamp())}")
        raise ValueError(f"macro ${name} is not supported by this expander")

    return _MACRO.sub(macro, sql)


def relative_range(now: datetime, time_from: str) -> tuple[datetime, datetime]:
    """A panel's relative time override ("7d") -> (now - 7d, now)."""
    return now - timedelta(milliseconds=parse_interval(time_from)), now
