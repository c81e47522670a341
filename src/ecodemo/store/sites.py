"""Register sites and their sensors (one sensor per site, ``sensor_id`` = ``site_id``).

Reads a file with the columns of the shared ``sites.csv``: at least
``site_id,name,kind,latitude,longitude,unit``; optional ``timezone``, ``capacity``,
``resolution`` (ISO 8601 duration), ``area``, ``source``, ``licence``. Re-registering updates.

The one writer of ``sites`` and ``sensors``: the catalogue's sensor details
(:func:`upsert_sensor`, :func:`drop_unread_sensor`, :func:`set_weather_station`) and the demo
purge's deletions go through here too.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from ecodemo.errors import InputError
from ecodemo.units import KINDS, canonical, problem, quantity_for

REQUIRED = ("site_id", "name", "kind", "latitude", "longitude", "unit")
_KNOWN = set(REQUIRED) | {"timezone", "capacity", "resolution", "area", "source", "licence"}


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    kind: str
    latitude: float
    longitude: float
    unit: str
    timezone: str = "Europe/Paris"
    capacity: float | None = None
    resolution: str | None = None
    area: str | None = None
    source: str | None = None
    licence: str | None = None
    attributes: dict[str, str] | None = None


#: Longest accepted site id (it is a primary key; PostgreSQL's btree entries are bounded too).
MAX_ID_CHARS = 200
#: Longest accepted free-text field (name, area, source, licence...).
MAX_TEXT_CHARS = 2_000


def _float(value: str | None, *, source: str, line: int, field: str) -> float:
    try:
        number = float(value if value is not None else "")
    except ValueError:
        raise InputError(f"'{value}' is not a number", source=source, line=line,
                         field=field) from None
    if not math.isfinite(number):
        raise InputError(f"'{value}' is not a finite number", source=source, line=line,
                         field=field)
    return number


def check_site(site: Site, *, source: str = "site", line: int | None = None) -> None:
    """Reject what PostgreSQL cannot store or what would be a mistake: NUL bytes (text columns
    cannot hold them), over-long ids and texts, control characters in the id, a capacity that
    is not a finite positive number."""
    texts = {"site_id": site.site_id, "name": site.name, "kind": site.kind, "unit": site.unit,
             "timezone": site.timezone, "resolution": site.resolution, "area": site.area,
             "source": site.source, "licence": site.licence,
             **{f"attributes.{k}": v for k, v in (site.attributes or {}).items()},
             **{f"attributes key '{k[:40]}'": k for k in (site.attributes or {})}}
    for name, text in texts.items():
        if text is None:
            continue
        if "\x00" in text:
            raise InputError("NUL byte in the text", source=source, line=line, field=name)
        if len(text) > MAX_TEXT_CHARS:
            raise InputError(f"longer than {MAX_TEXT_CHARS:,} characters", source=source,
                             line=line, field=name)
    sid = site.site_id
    if not sid or sid != sid.strip() or len(sid) > MAX_ID_CHARS \
            or any(not ch.isprintable() for ch in sid):
        raise InputError(f"site_id must be 1-{MAX_ID_CHARS} printable characters without "
                         "surrounding spaces", source=source, line=line, field="site_id")
    if site.capacity is not None and not (math.isfinite(site.capacity) and site.capacity > 0):
        raise InputError(f"capacity {site.capacity!r} is not a finite positive number",
                         source=source, line=line, field="capacity")


def read_sites_csv(path: Path) -> list[Site]:
    """Parse and validate a sites file; errors name the file, line and field."""
    src = str(path)
    if not Path(path).is_file():
        raise InputError("file not found", source=src)
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", source=src) from None
    line = 1
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InputError(f"missing column(s) {', '.join(missing)}", source=src, line=1)
        sites: list[Site] = []
        seen: set[str] = set()
        for line, row in enumerate(reader, start=2):
            sites.append(_site_of(row, seen, src, line))
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", source=src, line=line) from None
    return sites


def _site_of(row: dict[str | None, Any], seen: set[str], src: str, line: int) -> Site:
    """One validated Site from a csv.DictReader row (short rows give None cells)."""
    def cell(name: str) -> str:
        value = row.get(name)
        return value.strip() if isinstance(value, str) else ""

    sid = cell("site_id")
    if not sid:
        raise InputError("empty site_id", source=src, line=line, field="site_id")
    if sid in seen:
        raise InputError(f"duplicate site_id '{sid[:80]}'", source=src, line=line,
                         field="site_id")
    seen.add(sid)
    kind = cell("kind")
    if kind not in KINDS:
        raise InputError(f"unknown kind '{kind[:80]}' (expected one of {', '.join(KINDS)})",
                         source=src, line=line, field="kind")
    why = problem(cell("unit"))
    if why is not None:
        raise InputError(why, source=src, line=line, field="unit")
    unit = canonical(cell("unit"))
    lat = _float(cell("latitude"), source=src, line=line, field="latitude")
    lon = _float(cell("longitude"), source=src, line=line, field="longitude")
    if not (-90 <= lat <= 90) or not (-180 <= lon <= 180):
        raise InputError("coordinates out of range", source=src, line=line,
                         field="latitude/longitude")
    tz = cell("timezone") or "Europe/Paris"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"unknown timezone '{tz[:80]}'", source=src, line=line,
                         field="timezone") from None
    cap_raw = cell("capacity")
    cap = _float(cap_raw, source=src, line=line, field="capacity") if cap_raw else None
    extra = {k: v for k, v in row.items()
             if k not in _KNOWN and k and isinstance(v, str) and v}

    def optional(name: str) -> str | None:
        value = row.get(name)
        return value if isinstance(value, str) and value else None

    site = Site(
        site_id=sid, name=cell("name") or sid, kind=kind, latitude=lat,
        longitude=lon, unit=unit, timezone=tz, capacity=cap,
        resolution=cell("resolution") or None,
        area=optional("area"), source=optional("source"), licence=optional("licence"),
        attributes=extra,
    )
    check_site(site, source=src, line=line)
    return site


def register_sites(conn: psycopg.Connection, sites: Iterable[Site]) -> int:
    """Upsert sites and their single sensor. Returns how many sites were written."""
    n = 0
    with conn.transaction():
        for s in sites:
            check_site(s)
            try:
                conn.execute(
                    """INSERT INTO sites (site_id, name, kind, latitude, longitude, timezone,
                                          capacity, area, source, licence, attributes, updated_at)
                       VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::jsonb, now())
                       ON CONFLICT (site_id) DO UPDATE SET name=EXCLUDED.name, kind=EXCLUDED.kind,
                         latitude=EXCLUDED.latitude, longitude=EXCLUDED.longitude,
                         timezone=EXCLUDED.timezone, capacity=EXCLUDED.capacity,
                         area=EXCLUDED.area, source=EXCLUDED.source, licence=EXCLUDED.licence,
                         attributes=EXCLUDED.attributes, updated_at=now()""",
                    (s.site_id, s.name, s.kind, s.latitude, s.longitude, s.timezone, s.capacity,
                     s.area, s.source, s.licence, json.dumps(s.attributes or {})),
                )
                conn.execute(
                    """INSERT INTO sensors (sensor_id, site_id, kind, quantity, unit, resolution,
                                            timezone, source, updated_at)
                       VALUES (%s,%s,%s,%s,%s,%s::interval,%s,%s, now())
                       ON CONFLICT (sensor_id) DO UPDATE SET kind=EXCLUDED.kind,
                         quantity=EXCLUDED.quantity, unit=EXCLUDED.unit,
                         resolution=EXCLUDED.resolution, timezone=EXCLUDED.timezone,
                         updated_at=now()""",
                    (s.site_id, s.site_id, s.kind, quantity_for(s.unit), s.unit, s.resolution,
                     s.timezone, "file"),
                )
            except psycopg.errors.DataError as exc:
                # e.g. a resolution PostgreSQL cannot read as an interval: the file's fault
                first = " ".join(str(exc).split())[:200]
                raise InputError(
                    f"site '{s.site_id[:80]}' rejected by the database: {first}") from exc
            n += 1
    return n


def register_sites_csv(conn: psycopg.Connection, path: Path) -> int:
    return register_sites(conn, read_sites_csv(path))


def upsert_sensor(conn: psycopg.Connection, *, sensor_id: str, site_id: str, kind: str,
                  quantity: str, unit: str, resolution: str | None, timezone: str,
                  source: str | None, source_params: dict[str, Any], enabled: bool) -> None:
    """Insert or update one sensor with every detail a catalogue gives (``resolution``: an ISO
    8601 duration). In the caller's transaction."""
    conn.execute(
        """INSERT INTO sensors (sensor_id, site_id, kind, quantity, unit, resolution,
                                timezone, source, source_params, enabled, updated_at)
           VALUES (%s,%s,%s,%s,%s,%s::interval,%s,%s,%s::jsonb,%s, now())
           ON CONFLICT (sensor_id) DO UPDATE SET site_id=EXCLUDED.site_id,
             kind=EXCLUDED.kind, quantity=EXCLUDED.quantity, unit=EXCLUDED.unit,
             resolution=EXCLUDED.resolution, timezone=EXCLUDED.timezone,
             source=EXCLUDED.source, source_params=EXCLUDED.source_params,
             enabled=EXCLUDED.enabled, updated_at=now()""",
        (sensor_id, site_id, kind, quantity, unit, resolution, timezone, source,
         json.dumps(source_params), enabled),
    )


def drop_unread_sensor(conn: psycopg.Connection, sensor_id: str) -> None:
    """Delete a sensor that holds no readings (one that does stays). In the caller's txn."""
    conn.execute("DELETE FROM sensors WHERE sensor_id = %s AND NOT EXISTS "
                 "(SELECT 1 FROM readings WHERE sensor_id = %s)", (sensor_id, sensor_id))


def set_weather_station(conn: psycopg.Connection, site_id: str, station_id: str) -> None:
    """Pair a site with the weather station its forecasts use. In the caller's transaction."""
    conn.execute("UPDATE sites SET weather_station_id = %s WHERE site_id = %s",
                 (station_id, site_id))


def delete_sensors(conn: psycopg.Connection, sensor_ids: Sequence[str]) -> int:
    """Delete these sensors. In the caller's transaction; returns rows deleted."""
    return int(conn.execute("DELETE FROM sensors WHERE sensor_id = ANY(%s)",
                            (list(sensor_ids),)).rowcount)


def delete_empty_sites(conn: psycopg.Connection, site_ids: Sequence[str],
                       keep: Sequence[str] = ()) -> int:
    """Delete those of ``site_ids`` that have no sensor left and are not in ``keep``. In the
    caller's transaction; returns rows deleted."""
    return int(conn.execute(
        """DELETE FROM sites t WHERE t.site_id = ANY(%(sites)s)
           AND t.site_id <> ALL(%(keep)s)
           AND NOT EXISTS (SELECT 1 FROM sensors s WHERE s.site_id = t.site_id)""",
        {"sites": list(site_ids), "keep": list(keep)}).rowcount)
