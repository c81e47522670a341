"""Stage functions for Airflow tasks and the CLI: explicit Settings in, plain dicts out."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ecodemo.config import Settings
from ecodemo.dashboards.build import build_all, sync_dashboards, write_dashboards
from ecodemo.dashboards.labels import Lang
from ecodemo.dashboards.publish import Event, publish_to_grafana, store_events
from ecodemo.errors import ConfigError, DatabaseError, PublishError

log = logging.getLogger(__name__)


def build(out_dir: Path, lang: Lang = "fr") -> dict[str, Any]:
    """Write the three dashboards' JSON into ``out_dir``."""
    paths = write_dashboards(out_dir, lang)
    return {"out_dir": str(out_dir), "lang": lang, "files": [p.name for p in paths]}


def provision(settings: Settings, lang: Lang | None = None) -> dict[str, Any]:
    """Write the dashboards into ``settings.grafana_dashboards_dir``, the folder a Grafana file
    provider reads (docker compose shares it as a volume); Grafana picks changes up at its
    next scan (``updateIntervalSeconds``). No Grafana credential and no database needed.

    Annotations are not posted: the dashboards read training runs and promotions by SQL.
    """
    folder = settings.grafana_dashboards_dir
    if folder is None:
        raise ConfigError("ECODEMO_GRAFANA_DASHBOARDS_DIR is not set: no folder to provision")
    lang = lang or settings.dashboards_lang
    try:
        files = sync_dashboards(folder, lang)
    except OSError as exc:
        raise PublishError(f"cannot write dashboards into {folder}: "
                           f"{exc.strerror or type(exc).__name__}") from exc
    return {"mode": "provisioning", "out_dir": str(folder), "lang": lang,
            "dashboards": [p.stem for p, _ in files],
            "written": [p.name for p, changed in files if changed],
            "unchanged": [p.name for p, changed in files if not changed]}


def publish(settings: Settings, out_dir: Path | None = None,
            lang: Lang | None = None) -> dict[str, Any]:
    """Publish the dashboards where the settings say: into the provisioned folder
    (``ECODEMO_GRAFANA_DASHBOARDS_DIR``, see :func:`provision`) or to Grafana's HTTP API
    (``ECODEMO_GRAFANA_URL``); also write the JSON to ``out_dir``.

    Both set is refused: Grafana will not let the API overwrite a dashboard provisioned from
    files, so one Grafana takes one path. Raises PublishError (one line) when Grafana fails, so
    the Airflow task retries. When the store cannot be read, the dashboards are still published
    over the API, without new annotations.
    """
    if settings.grafana_dashboards_dir is not None and settings.grafana_url:
        raise ConfigError("set ECODEMO_GRAFANA_DASHBOARDS_DIR (file provisioning) or "
                          "ECODEMO_GRAFANA_URL (HTTP API), not both: Grafana refuses API "
                          "writes to provisioned dashboards")
    lang = lang or settings.dashboards_lang
    if out_dir is not None:
        write_dashboards(out_dir, lang)
    if settings.grafana_dashboards_dir is not None:
        return provision(settings, lang)
    dashboards = list(build_all(lang).values())
    events: list[Event] = []
    events_error: str | None = None
    try:
        from ecodemo.store.connection import connect

        with connect(settings) as conn:
            events = store_events(conn, lang=lang)
    except DatabaseError as exc:
        events_error = str(exc)
        log.warning("annotations skipped: %s", exc)
    result = publish_to_grafana(settings, dashboards, events).as_dict()
    result["mode"] = "api"
    result["annotations_error"] = events_error
    return result
