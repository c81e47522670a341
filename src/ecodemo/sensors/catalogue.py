"""The sensor catalogue (``sensors/catalogue.yaml``): sources, sites and their sensors.

Loaded with pydantic; any error becomes one :class:`ConfigError` line naming the file, the entry
(``sites[2] 'paris-bike-x' sensors[0]``) and the field. Registering writes ``sites`` and
``sensors`` through their one writer, :mod:`ecodemo.store.sites`: the sites, then the sensor
details that file registration does not know (source, its parameters, enabled).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ecodemo.errors import ConfigError
from ecodemo.paths import sensors_dir
from ecodemo.sensors.params import CONNECTORS, PARAM_MODELS
from ecodemo.store.sites import (
    Site,
    drop_unread_sensor,
    register_sites,
    set_weather_station,
    upsert_sensor,
)
from ecodemo.units import KINDS, canonical, problem, quantity_for

CATALOGUE_FILE = "catalogue.yaml"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_DURATION_RE = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")


def parse_resolution(text: str) -> timedelta:
    """ISO 8601 time duration (``PT30M``, ``PT1H``) -> timedelta."""
    m = _DURATION_RE.match(text)
    if not m or not any(m.groups()):
        raise ValueError(f"'{text}' is not an ISO 8601 duration like PT1H or PT30M")
    h, mi, s = (int(g or 0) for g in m.groups())
    return timedelta(hours=h, minutes=mi, seconds=s)


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``allowed``, else the pydantic error naming the choices."""
    if value not in allowed:
        raise ValueError(f"unknown {what} '{value}' (expected one of {', '.join(allowed)})")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Model):
    """A named connector configuration (a preset); sensors refer to it by name."""

    connector: str
    enabled: bool = True
    description: str | None = None
    licence: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("connector")
    @classmethod
    def _known(cls, v: str) -> str:
        return _one_of(v, CONNECTORS, "connector")


class SensorSpec(_Model):
    sensor_id: str | None = Field(default=None, description="Default: the site's id.")
    quantity: str | None = Field(default=None, description="Default: derived from the unit.")
    unit: str
    resolution: str | None = Field(default=None, description="Nominal step, ISO 8601 (PT1H).")
    source: str | None = Field(default=None, description="Name of an entry of `sources`.")
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str) -> str:
        why = problem(v)
        if why is not None:
            raise ValueError(why)
        return canonical(v)

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v: str | None) -> str | None:
        if v is not None:
            parse_resolution(v)
        return v

    @field_validator("sensor_id")
    @classmethod
    def _sid(cls, v: str | None) -> str | None:
        if v is not None and not _ID_RE.match(v):
            raise ValueError(f"'{v}' is not a valid id (letters, digits, _ . : -)")
        return v


class SiteSpec(_Model):
    site_id: str
    name: str
    short_name: str | None = Field(default=None, description="Display name in dashboards and "
                                   "the report (full name on hover); derived when absent.")
    kind: str
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    timezone: str = "Europe/Paris"
    capacity: float | None = Field(default=None, gt=0, description="In the sensors' unit.")
    area: str | None = None
    licence: str | None = None
    weather_station: str | None = Field(default=None, description="weather.station_id to use.")
    attributes: dict[str, str] = Field(default_factory=dict)
    sensors: list[SensorSpec] = Field(min_length=1)

    @field_validator("site_id")
    @classmethod
    def _sid(cls, v: str) -> str:
        if not _ID_RE.match(v):
            raise ValueError(f"'{v}' is not a valid id (letters, digits, _ . : -)")
        return v

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        return _one_of(v, KINDS, "kind")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone '{v}'") from None
        return v


class _CatalogueModel(_Model):
    version: int = 1
    sources: dict[str, SourceSpec] = Field(default_factory=dict)
    sites: list[SiteSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class SensorEntry:
    """A sensor with its site and its resolved connector parameters (source + overrides)."""

    sensor_id: str
    site: SiteSpec
    spec: SensorSpec
    source_name: str | None
    connector: str | None
    params: Any  # the connector's validated params model, or None without a source

    @property
    def enabled(self) -> bool:
        return self.spec.enabled

    @property
    def unit(self) -> str:
        return self.spec.unit


@dataclass(frozen=True)
class Catalogue:
    path: Path
    sources: dict[str, SourceSpec]
    sites: list[SiteSpec]
    sensors: list[SensorEntry]
    source_params: dict[str, Any]  # validated params of sources whose own params are complete

    @property
    def folder(self) -> Path:
        return self.path.parent

    def site(self, site_id: str) -> SiteSpec:
        for s in self.sites:
            if s.site_id == site_id:
                return s
        raise ConfigError(f"{self.path}: no site '{site_id}' in the catalogue")

    def sensors_of(self, source_name: str, *, enabled_only: bool = True) -> list[SensorEntry]:
        return [s for s in self.sensors if s.source_name == source_name
                and (s.enabled or not enabled_only)]

    def source(self, name: str) -> SourceSpec:
        try:
            return self.sources[name]
        except KeyError:
            raise ConfigError(
                f"{self.path}: unknown source '{name}' (catalogue sources: "
                f"{', '.join(sorted(self.sources)) or 'none'})"
            ) from None

    def enabled_sources(self) -> list[str]:
        """Sources enabled in the catalogue that have an enabled sensor or need none."""
        out = []
        for name, spec in self.sources.items():
            if not spec.enabled:
                continue
            own = self.source_params.get(name)
            needs_sensors = spec.connector == "simulator" or (
                spec.connector == "opendatasoft"
                and (own is None or getattr(own, "target", "readings") == "readings"))
            if needs_sensors and not self.sensors_of(name):
                continue
            out.append(name)
        return out


def default_catalogue_path() -> Path:
    return sensors_dir() / CATALOGUE_FILE


def _entry_name(raw: Any, loc: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """Turn a pydantic location into ('sites[2] 'id' sensors[0]', remaining field path)."""
    parts: list[str] = []
    node = raw
    i = 0
    while i < len(loc):
        key = loc[i]
        if key in ("sites", "sensors") and i + 1 < len(loc) and isinstance(loc[i + 1], int):
            idx = loc[i + 1]
            try:
                node = node[key][idx]
                ident = node.get("site_id") or node.get("sensor_id") if isinstance(node, dict) \
                    else None
            except (KeyError, IndexError, TypeError):
                ident = None
            parts.append(f"{key}[{idx}]" + (f" '{ident}'" if ident else ""))
            i += 2
            continue
        if key == "sources" and i + 1 < len(loc):
            parts.append(f"sources.{loc[i + 1]}")
            try:
                node = node["sources"][loc[i + 1]]
            except (KeyError, TypeError):
                node = None
            i += 2
            continue
        break
    return " ".join(parts) or "top level", tuple(loc[i:])


def _fail(path: Path, entry: str, field: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {entry}: field '{field}': {msg}")


def _first_error(path: Path, raw: Any, exc: ValidationError, prefix: tuple[Any, ...] = (),
                 entry: str | None = None) -> ConfigError:
    errs = exc.errors()
    err = errs[0]
    loc = prefix + tuple(err["loc"])
    name, rest = _entry_name(raw, loc) if entry is None else (entry, tuple(err["loc"]))
    field = ".".join(str(p) for p in rest) or "(entry)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field (typo?)"
    more = f" (+{len(errs) - 1} more error(s))" if len(errs) > 1 else ""
    return _fail(path, name, field, msg + more)


def parse_catalogue(raw: Any, path: Path) -> Catalogue:
    """Validate a parsed YAML document. Pure (no file or database access)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with 'sources' and 'sites' at top level")
    try:
        model = _CatalogueModel.model_validate(raw)
    except ValidationError as exc:
        raise _first_error(path, raw, exc) from None

    source_params: dict[str, Any] = {}
    for name, src in model.sources.items():
        try:
            source_params[name] = PARAM_MODELS[src.connector].model_validate(src.params)
        except ValidationError:
            pass  # incomplete on its own: its sensors complete it (checked below)

    sensors: list[SensorEntry] = []
    seen_sites: set[str] = set()
    seen_sensors: set[str] = set()
    for i, site in enumerate(model.sites):
        site_entry = f"sites[{i}] '{site.site_id}'"
        if site.site_id in seen_sites:
            raise _fail(path, site_entry, "site_id", f"duplicate site_id '{site.site_id}'")
        seen_sites.add(site.site_id)
        for j, sensor in enumerate(site.sensors):
            sid = sensor.sensor_id or site.site_id
            entry = f"{site_entry} sensors[{j}] '{sid}'"
            if sid in seen_sensors:
                raise _fail(path, entry, "sensor_id", f"duplicate sensor_id '{sid}'")
            seen_sensors.add(sid)
            params = None
            connector = None
            if sensor.source is not None:
                if sensor.source not in model.sources:
                    raise _fail(path, entry, "source", f"unknown source '{sensor.source}' "
                                f"(defined: {', '.join(sorted(model.sources)) or 'none'})")
                src = model.sources[sensor.source]
                connector = src.connector
                merged = {**src.params, **sensor.params}
                try:
                    params = PARAM_MODELS[connector].model_validate(merged)
                except ValidationError as exc:
                    raise _first_error(path, raw, exc, entry=entry + " params") from None
            elif sensor.params:
                raise _fail(path, entry, "params", "params given without a source")
            sensors.append(SensorEntry(sid, site, sensor, sensor.source, connector, params))

    for name, src in model.sources.items():
        if name in source_params:
            continue
        if not any(s.source_name == name for s in sensors):
            # Nothing completes it: report the source's own first error.
            try:
                PARAM_MODELS[src.connector].model_validate(src.params)
            except ValidationError as exc:
                raise _first_error(path, raw, exc, entry=f"sources.{name} params") from None
    return Catalogue(path, dict(model.sources), list(model.sites), sensors, source_params)


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Read and validate the catalogue (default: ``sensors/catalogue.yaml``)."""
    path = Path(path) if path is not None else default_catalogue_path()
    if not path.is_file():
        raise ConfigError(f"{path}: catalogue file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: not valid YAML: {problem}") from None
    return parse_catalogue(raw, path)


def _site_rows(cat: Catalogue) -> Iterator[Site]:
    for s in cat.sites:
        first = s.sensors[0]
        yield Site(
            site_id=s.site_id, name=s.name, kind=s.kind, latitude=s.latitude,
            longitude=s.longitude, unit=first.unit, timezone=s.timezone, capacity=s.capacity,
            resolution=first.resolution, area=s.area,
            source=first.source, licence=s.licence,
            attributes=dict(s.attributes) | ({"short_name": s.short_name} if s.short_name
                                             else {}),
        )


def register_catalogue(conn: psycopg.Connection, cat: Catalogue) -> dict[str, int]:
    """Upsert the catalogue's sites and sensors. Idempotent; returns counts."""
    n_sites = register_sites(conn, _site_rows(cat))
    declared = {e.sensor_id for e in cat.sensors}
    with conn.transaction():
        for e in cat.sensors:
            upsert_sensor(
                conn, sensor_id=e.sensor_id, site_id=e.site.site_id, kind=e.site.kind,
                quantity=e.spec.quantity or quantity_for(e.spec.unit), unit=e.spec.unit,
                resolution=e.spec.resolution, timezone=e.site.timezone, source=e.source_name,
                source_params=e.params.model_dump(mode="json") if e.params is not None else {},
                enabled=e.spec.enabled)
        # register_sites creates a sensor named after each site; drop it when the catalogue
        # declares differently named sensors for that site and it holds no readings.
        for s in cat.sites:
            if s.site_id not in declared:
                drop_unread_sensor(conn, s.site_id)
            if s.weather_station:
                set_weather_station(conn, s.site_id, s.weather_station)
    return {"sites": n_sites, "sensors": len(cat.sensors)}
