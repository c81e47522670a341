"""Register sites and their sensors (one sensor per site, ``sensor_id`` = ``site_id``).

Reads a file with the columns of the shared ``sites.csv``: at least
``site_id,name,kind,latitude,longitude,unit``; optional ``timezone``, ``capacity``,
``resolution`` (ISO 8601 duration), ``area``, ``source``, ``licence``. Re-registering updates.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from ecodemo.errors import InputError
from ecodemo.units import KINDS, UNITS, quantity_for

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


def _float(value: str, *, source: str, line: int, field: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InputError(f"'{value}' is not a number", source=source, line=line,
                         field=field) from None


def read_sites_csv(path: Path) -> list[Site]:
    """Parse and validate a sites file; errors name the file, line and field."""
    src = str(path)
    if not Path(path).is_file():
        raise InputError("file not found", source=src)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InputError(f"missing column(s) {', '.join(missing)}", source=src, line=1)
        sites: list[Site] = []
        seen: set[str] = set()
        for line, row in enumerate(reader, start=2):
            sid = (row["site_id"] or "").strip()
            if not sid:
                raise InputError("empty site_id", source=src, line=line, field="site_id")
            if sid in seen:
                raise InputError(f"duplicate site_id '{sid}'", source=src, line=line,
                                 field="site_id")
            seen.add(sid)
            kind = (row["kind"] or "").strip()
            if kind not in KINDS:
                raise InputError(f"unknown kind '{kind}' (expected one of {', '.join(KINDS)})",
                                 source=src, line=line, field="kind")
            unit = (row["unit"] or "").strip()
            if unit not in UNITS:
                raise InputError(f"unknown unit '{unit}'", source=src, line=line, field="unit")
            lat = _float(row["latitude"], source=src, line=line, field="latitude")
            lon = _float(row["longitude"], source=src, line=line, field="longitude")
            if not (-90 <= lat <= 90) or not (-180 <= lon <= 180):
                raise InputError("coordinates out of range", source=src, line=line,
                                 field="latitude/longitude")
            tz = (row.get("timezone") or "").strip() or "Europe/Paris"
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                raise InputError(f"unknown timezone '{tz}'", source=src, line=line,
                                 field="timezone") from None
            cap_raw = (row.get("capacity") or "").strip()
            cap = _float(cap_raw, source=src, line=line, field="capacity") if cap_raw else None
            extra = {k: v for k, v in row.items() if k not in _KNOWN and k and v}
            sites.append(Site(
                site_id=sid, name=(row["name"] or sid).strip(), kind=kind, latitude=lat,
                longitude=lon, unit=unit, timezone=tz, capacity=cap,
                resolution=(row.get("resolution") or "").strip() or None,
                area=row.get("area") or None, source=row.get("source") or None,
                licence=row.get("licence") or None, attributes=extra,
            ))
    return sites


def register_sites(conn: psycopg.Connection, sites: Iterable[Site]) -> int:
    """Upsert sites and their single sensor. Returns how many sites were written."""
    n = 0
    with conn.transaction():
        for s in sites:
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
            n += 1
    return n


def register_sites_csv(conn: psycopg.Connection, path: Path) -> int:
    return register_sites(conn, read_sites_csv(path))
