"""Stage functions for Airflow tasks and the CLI: explicit Settings in, plain dicts out."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ecodemo.config import Settings
from ecodemo.dashboards.build import build_all, write_dashboards
from ecodemo.dashboards.labels import Lang
from ecodemo.dashboards.publish import Event, publish_to_grafana, store_events
from ecodemo.errors import DatabaseError

log = logging.getLogger(__name__)


def build(out_dir: Path, lang: Lang = "fr") -> dict[str, Any]:
    """Write the three dashboards' JSON into ``out_dir``."""
    paths = write_dashboards(out_dir, lang)
    return {"out_dir": str(out_dir), "lang": lang, "files": [p.name for p in paths]}


def publish(settings: Settings, out_dir: Path | None = None,
            lang: Lang = "fr") -> dict[str, Any]:
    """Publish to Grafana (``settings.grafana_url``); also write the JSON to ``out_dir``.

    Raises PublishError (one line) when Grafana fails, so the Airflow task retries. When the
    store cannot be read, the dashboards are still published, without new annotations.
    """
    if out_dir is not None:
        write_dashboards(out_dir, lang)
    dashboards = list(build_all(lang).values())
    events: list[Event] = []
    events_error: str | None = None
    try:
        from ecodemo.store.connection import connect

        with connect(settings) as conn:
            events = store_events(conn)
    except DatabaseError as exc:
        events_error = str(exc)
        log.warning("annotations skipped: %s", exc)
    result = publish_to_grafana(settings, dashboards, events).as_dict()
    result["annotations_error"] = events_error
    return result
