"""Typed parameters of each connector, validated when the catalogue loads.

A source in the catalogue gives defaults; a sensor's ``params`` override them (for example the
series id of one counter, or which column of a dataset holds its value).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

CONNECTORS = ("opendatasoft", "open_meteo", "files", "mqtt", "simulator", "snapshot")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpendatasoftParams(_Params):
    """Opendatasoft Explore API v2.1 dataset: which fields hold the time, value and series."""

    base_url: str = Field(description="Portal root, e.g. https://opendata.paris.fr")
    dataset: str = Field(min_length=1, description="Dataset id on the portal.")
    timestamp_field: str = Field(min_length=1)
    value_field: str = Field(min_length=1)
    series_field: str | None = Field(default=None, description="Field naming the series/counter.")
    series: str | None = Field(default=None, description="This sensor's value of series_field.")
    where: str | None = Field(default=None, description="Extra ODSQL filter, ANDed.")
    unit: str | None = Field(default=None, description="Unit of value_field (default: sensor's).")
    target: Literal["readings", "grid_intensity"] = "readings"
    zone: str | None = Field(default=None, description="grid_intensity zone, e.g. FR.")
    source_label: str | None = Field(default=None, description="grid_intensity.source text.")
    page_size: int = Field(default=100, ge=1, le=100, description="records per page (max 100).")
    max_offset: int = Field(default=10_000, ge=10, description="records API offset cap.")
    timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=4, ge=0, le=10)
    backfill_days: int = Field(default=30, ge=1, description="Window for a sensor with no data.")
    api_key: str | None = Field(default=None, description="Name of an env var holding a key.")

    @field_validator("base_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class OpenMeteoParams(_Params):
    """Open-Meteo hourly weather at the coordinates of the listed sites (all when empty)."""

    archive_url: str = "https://archive-api.open-meteo.com/v1/archive"
    forecast_url: str = "https://api.open-meteo.com/v1/forecast"
    previous_runs_url: str = "https://previous-runs-api.open-meteo.com/v1/forecast"
    previous_run_days: tuple[int, ...] = Field(
        default=(1, 2), description="Backfill of forecasts as issued: runs N >= 1 days before "
        "(day 0 is the latest run, possibly published after the hour it forecasts).")
    mode: Literal["archive", "forecast", "auto"] = Field(
        default="auto", description="auto: archive up to 5 days ago, forecast after.")
    variables: tuple[str, ...] = (
        "temperature_2m", "cloud_cover", "shortwave_radiation", "wind_speed_10m",
        "wind_speed_100m", "precipitation",
    )
    sites: tuple[str, ...] = Field(default=(), description="Site ids; empty = every site.")
    forecast_days: int = Field(default=3, ge=1, le=16)
    timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=4, ge=0, le=10)
    backfill_days: int = Field(
        default=30, ge=1, description="Days fetched for a station with none stored yet (archive; "
        "rolling backfill of forecasts as issued).")

    @field_validator("previous_run_days")
    @classmethod
    def _days_back(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or min(v) < 1:
            raise ValueError("must list whole days >= 1 (e.g. [1, 2])")
        return v


class FilesParams(_Params):
    """A drop folder of CSV/Parquet files, long format or mapped through ``columns``."""

    path: str = Field(description="Glob, relative to the catalogue's folder unless absolute.")
    format: Literal["auto", "csv", "parquet"] = "auto"
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Mapping target -> file column for timestamp, sensor_id, value, unit.")
    constants: dict[str, str] = Field(
        default_factory=dict, description="Fixed sensor_id/unit when the file has no column.")
    wide_sensors: dict[str, str] = Field(
        default_factory=dict, description="Wide layout: file column -> sensor_id.")
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    decimal: Literal[".", ","] = Field(
        default=".", description="Decimal mark of the CSV's values; ',' also takes spaces "
        "between thousands (1 234,5), never dots.")
    encoding: Literal["utf-8", "latin-1", "cp1252"] = Field(
        default="utf-8", description="Text encoding of the CSV (a French export is often "
        "cp1252).")
    timestamp_format: str | None = Field(default=None, description="strptime format if not ISO.")
    timezone: str | None = Field(default=None, description="Localise naive stamps (default: "
                                 "the sensor's timezone).")

    @field_validator("decimal")
    @classmethod
    def _decimal_not_delimiter(cls, v: str, info: ValidationInfo) -> str:
        if info.data.get("delimiter") == v:
            raise ValueError(f"the decimal mark '{v}' is also the delimiter (a decimal-comma "
                             "export is separated by ';': set delimiter: ';')")
        return v

    @field_validator("encoding", mode="before")
    @classmethod
    def _encoding_alias(cls, v: object) -> object:
        # the spellings exports and editors show; anything else is refused by the Literal
        aliases = {"utf8": "utf-8", "latin1": "latin-1", "iso-8859-1": "latin-1",
                   "windows-1252": "cp1252"}
        return aliases.get(v.lower(), v.lower()) if isinstance(v, str) else v


class MqttParams(_Params):
    """An MQTT broker and topic carrying JSON uplinks from IoT gateways."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    topic: str = "ecodemo/+/uplink"
    qos: Literal[0, 1, 2] = 1
    client_id: str = "ecodemo-ingest"
    sensor_field: str = "sensor_id"
    timestamp_field: str = "timestamp"
    value_field: str = "value"
    unit_field: str = "unit"
    batch_rows: int = Field(default=500, ge=1)
    batch_seconds: float = Field(default=1.0, gt=0)
    buffer_rows: int = Field(default=100_000, ge=1, description="Bound of the outage buffer.")
    username_env: str | None = None
    password_env: str | None = None


class SimulatorParams(_Params):
    """Seeded synthetic series for load tests and offline demos."""

    seed: int = 0
    freq: str = "1h"
    backfill_days: int = Field(default=7, ge=1)


class SnapshotParams(_Params):
    """The bundled demo snapshot (sites, series, weather), ingested once per content version.

    Demo data: a deployment enables a ``snapshot`` source only to show the demo in its store;
    ``ecodemo db purge-demo`` takes it out again.
    """


PARAM_MODELS: dict[str, type[_Params]] = {
    "opendatasoft": OpendatasoftParams,
    "open_meteo": OpenMeteoParams,
    "files": FilesParams,
    "mqtt": MqttParams,
    "simulator": SimulatorParams,
    "snapshot": SnapshotParams,
}
