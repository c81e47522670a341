"""One frozen Settings object, built once at the edge (CLI, DAG task) and passed down.

Every field reads the environment variable ``ECODEMO_<FIELD>``. Secrets are ``SecretStr`` so
they never appear in ``repr``/logs; use :meth:`Settings.safe_dict` to show the settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ecodemo"


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)


class Settings(BaseSettings):
    """Runtime settings for every stage. Immutable: build a new one with ``model_copy``."""

    model_config = SettingsConfigDict(env_prefix="ECODEMO_", frozen=True, extra="ignore")

    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL/TimescaleDB URL. Unset: an embedded PostgreSQL in state_dir.",
    )
    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="Working state: embedded database, CodeCarbon output, processed-file log.",
    )
    models_dir: Path = Field(default=Path("models"), description="Trained model artefacts.")
    country_iso_code: str = Field(default="FRA", description="Country for carbon accounting.")
    region: str | None = Field(default=None, description="Region for carbon accounting.")
    grafana_url: str | None = Field(default=None, description="Grafana base URL for publishing.")
    grafana_token: SecretStr | None = Field(default=None, description="Grafana service token.")
    grafana_user: str | None = Field(default=None, description="Grafana basic-auth user.")
    grafana_password: SecretStr | None = Field(default=None, description="Grafana password.")
    grafana_folder: str = Field(default="ecodemo", description="Grafana folder uid/title.")
    grafana_dashboards_dir: Path | None = Field(
        default=None,
        description="Folder a Grafana file provider reads dashboards from (docker compose: a "
                    "volume shared with Grafana). When set, publishing writes the JSON there "
                    "instead of calling Grafana's HTTP API; no Grafana credential is needed.",
    )
    dashboards_lang: Literal["fr", "en"] = Field(
        default="fr", description="Language of the published dashboards: fr or en.")
    grafana_db_host: str = Field(
        default="timescaledb:5432",
        description="host:port of the database as Grafana reaches it (datasource created by "
                    "`ecodemo dashboards publish` when missing).",
    )
    grafana_db_name: str | None = Field(
        default=None, description="Database name for Grafana; unset: the one in database_url."
    )
    grafana_db_user: str | None = Field(default=None, description="Read-only role for Grafana.")
    grafana_db_password: SecretStr | None = Field(
        default=None, description="Password of the read-only role Grafana uses."
    )
    num_threads: int = Field(default=2, ge=1, description="Threads for LightGBM.")
    ingest_batch_rows: int = Field(
        default=500_000, ge=1_000, description="Rows per COPY batch (bounds memory)."
    )
    log_level: LogLevel = Field(
        default="INFO", description="Log level of the CLI (--debug and --quiet override it).")
    benefit_model_path: Path | None = Field(
        default=None,
        description="YAML deep-merged over the shipped benefit model (energy/benefit_defaults).",
    )
    grid_zone: str = Field(default="FR", description="grid_intensity zone used for compute runs.")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @property
    def embedded(self) -> bool:
        """True when ecodemo runs its own PostgreSQL (no database_url set)."""
        return self.database_url is None

    def safe_dict(self) -> dict[str, Any]:
        """Settings as a dict with secrets masked, for display and logs."""
        out: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                out[name] = "***" if value.get_secret_value() else ""
            elif name == "database_url" and value is None:
                out[name] = "(embedded PostgreSQL)"
            else:
                out[name] = str(value) if isinstance(value, Path) else value
        return out


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, with explicit overrides (CLI options)."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)
