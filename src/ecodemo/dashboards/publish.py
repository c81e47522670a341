"""Publish the dashboards to a running Grafana over its HTTP API (grafana-client).

Creates the folder and the PostgreSQL datasource when missing, uploads each dashboard
(overwrite by uid) and adds annotations for training runs and model promotions. Grafana keeps
its own copy of those events, tagged ``ecodemo``, so they show on other dashboards (filter by
tag) and outlive data retention; the ecodemo dashboards read the same events by SQL.

Failures (unreachable, 401, 400, 5xx, timeout) become one-line :class:`PublishError`s; nothing
is written to the store. Note: a dashboard provisioned from files cannot be overwritten through
the API (Grafana answers 400): use one path per Grafana instance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from psycopg.conninfo import conninfo_to_dict

from ecodemo.config import Settings
from ecodemo.dashboards import humanize as hz
from ecodemo.dashboards.common import KIND_NAMES
from ecodemo.dashboards.labels import Lang, labels
from ecodemo.dashboards.sql import PG_TYPE, PG_UID
from ecodemo.errors import PublishError

log = logging.getLogger(__name__)
T = TypeVar("T")
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Event:
    """A point or span on the time axis, posted as a Grafana annotation."""

    key: str  # unique tag, used to skip events already posted
    time: datetime
    time_end: datetime | None
    text: str
    tags: tuple[str, ...]

    def as_tags(self) -> list[str]:
        return ["ecodemo", *self.tags, self.key]


@dataclass
class PublishResult:
    url: str
    folder_created: bool = False
    datasource_created: bool = False
    dashboards: list[str] = field(default_factory=list)
    annotations_added: int = 0
    annotations_skipped: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "folder_created": self.folder_created,
                "datasource_created": self.datasource_created, "dashboards": self.dashboards,
                "annotations_added": self.annotations_added,
                "annotations_skipped": self.annotations_skipped}


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def client(settings: Settings) -> Any:
    """A GrafanaApi for ``settings.grafana_url`` with a token or basic auth."""
    from grafana_client import GrafanaApi

    if not settings.grafana_url:
        raise PublishError("ECODEMO_GRAFANA_URL is not set: nowhere to publish")
    credential: str | tuple[str, str] | None = None
    if settings.grafana_token is not None:
        credential = settings.grafana_token.get_secret_value()
    elif settings.grafana_user and settings.grafana_password is not None:
        credential = (settings.grafana_user, settings.grafana_password.get_secret_value())
    else:
        raise PublishError("no Grafana credentials: set ECODEMO_GRAFANA_TOKEN, or "
                           "ECODEMO_GRAFANA_USER and ECODEMO_GRAFANA_PASSWORD")
    url = settings.grafana_url
    # grafana-client joins "api" to the path: a sub-path URL needs its trailing slash.
    if not url.endswith("/"):
        url += "/"
    return GrafanaApi.from_url(url=url, credential=credential, timeout=TIMEOUT_S)


@contextmanager
def _errors(url: str) -> Iterator[None]:
    """Turn grafana-client and transport failures into one-line PublishErrors."""
    import niquests
    from grafana_client.client import (
        GrafanaBadInputError,
        GrafanaException,
        GrafanaServerError,
        GrafanaTimeoutError,
        GrafanaUnauthorizedError,
    )

    try:
        yield
    except GrafanaUnauthorizedError as exc:
        raise PublishError(f"Grafana at {url} refused the credentials (401)") from exc
    except GrafanaBadInputError as exc:
        raise PublishError(f"Grafana at {url} rejected a request (400): "
                           f"{_first_line(exc.message)}") from exc
    except GrafanaTimeoutError as exc:
        raise PublishError(f"Grafana at {url} did not answer within {TIMEOUT_S:g} s") from exc
    except GrafanaServerError as exc:
        raise PublishError(f"Grafana at {url} failed ({exc.status_code}): "
                           f"{_first_line(exc.message)}") from exc
    except GrafanaException as exc:
        raise PublishError(f"Grafana at {url} answered {exc.status_code}: "
                           f"{_first_line(exc.message)}") from exc
    except (niquests.exceptions.RequestException, OSError) as exc:
        raise PublishError(f"cannot reach Grafana at {url}: {type(exc).__name__}") from exc


def _first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0][:200] if lines else ""


def _missing(call: Callable[[], T]) -> bool:
    """True when ``call`` answers 404 (the resource does not exist)."""
    from grafana_client.client import GrafanaClientError

    try:
        call()
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return True
        raise
    return False


def datasource_body(settings: Settings) -> dict[str, Any]:
    """The same datasource as dashboards/provisioning/datasources/ecodemo.yaml."""
    dbname = settings.grafana_db_name
    if dbname is None and settings.database_url is not None:
        found = conninfo_to_dict(settings.database_url.get_secret_value()).get("dbname")
        dbname = str(found) if found else None
    body: dict[str, Any] = {
        "name": PG_UID, "uid": PG_UID, "type": PG_TYPE, "access": "proxy",
        "url": settings.grafana_db_host, "user": settings.grafana_db_user or "",
        "isDefault": True,
        "jsonData": {"database": dbname or "ecodemo", "sslmode": "disable",
                     "postgresVersion": 1700, "timescaledb": True},
    }
    if settings.grafana_db_password is not None:
        body["secureJsonData"] = {"password": settings.grafana_db_password.get_secret_value()}
    return body


def publish_to_grafana(settings: Settings, dashboards: list[dict[str, Any]],
                       events: list[Event]) -> PublishResult:
    """Folder, datasource, dashboards, then annotations; stops at the first failure."""
    api = client(settings)
    url = settings.grafana_url or ""
    folder = settings.grafana_folder
    result = PublishResult(url=url)
    with _errors(url):
        if _missing(lambda: api.folder.get_folder(folder)):
            api.folder.create_folder(folder, uid=folder)
            result.folder_created = True
        if _missing(lambda: api.datasource.get_datasource_by_uid(PG_UID)):
            api.datasource.create_datasource(datasource_body(settings))
            result.datasource_created = True
        for dash in dashboards:
            body = {k: v for k, v in dash.items() if k != "id"}
            api.dashboard.update_dashboard({"dashboard": body, "folderUid": folder,
                                            "overwrite": True,
                                            "message": "ecodemo dashboards publish"})
            result.dashboards.append(str(dash["uid"]))
        if events:
            posted = api.annotations.find_annotations(tags=["ecodemo"], limit=10000) or []
            known = {tag for ann in posted for tag in ann.get("tags", [])}
            for ev in events:
                if ev.key in known:
                    result.annotations_skipped += 1
                    continue
                api.annotations.add_annotation(
                    time_from=_ms(ev.time),
                    time_to=_ms(ev.time_end) if ev.time_end else None,
                    tags=ev.as_tags(), text=ev.text)
                result.annotations_added += 1
    return result


def store_events(conn: Any, limit: int = 500, lang: Lang = "fr") -> list[Event]:
    """Training runs (compute_runs) and promotions (models), newest first, at most ``limit``,
    worded in ``lang`` as the dashboards' own annotations are ('entraînement vélo LightGBM
    grand v2 · 91 J (estimation)')."""
    t = labels(lang)

    def kind_words(kind: str | None) -> str:
        names = KIND_NAMES.get(kind or "")
        return names[0 if lang == "fr" else 1] if names else (kind or "")

    def method_word(method: str | None) -> str:
        m = (method or "").lower()
        key = "estimated" if m.startswith("estimated") else "measured" if m.startswith(
            "measured") else "not measured"
        return t[f"method.kind.{key}"]

    events: list[Event] = []
    for run_id, started, secs, kind, m_kind, name, version, model_id, kwh, method, status in \
            conn.execute(
        """SELECT c.run_id, c.started_at, c.duration_s, c.sensor_kind, m.kind, m.name,
                  m.version, c.model_id, c.energy_kwh, c.measurement_method, c.status
           FROM compute_runs c LEFT JOIN models m ON m.model_id = c.model_id
           WHERE c.stage = 'train' ORDER BY c.started_at DESC LIMIT %s""", (limit,)):
        model = (f"{kind_words(m_kind)} {t.get(f'rung.short.{name}', name)} v{version}"
                 if name else model_id or kind_words(kind))
        energy = (f"{hz.energy(kwh, lang)} ({method_word(method)})" if kwh is not None
                  else t["annot.not_measured"])
        end = started + timedelta(seconds=secs) if secs else None
        events.append(Event(
            key=f"run:{run_id}", time=started, time_end=end,
            text=f"{t['annot.train_text']} {model} · {energy}" + (
                "" if status == "ok" else f" · {t['annot.failed']}"),
            tags=("training", kind or "all")))
    for model_id, when, kind, name, version in conn.execute(
        """SELECT model_id, promoted_at, kind, name, version FROM models
           WHERE promoted_at IS NOT NULL ORDER BY promoted_at DESC LIMIT %s""", (limit,)):
        events.append(Event(key=f"promotion:{model_id}", time=when, time_end=None,
                            text=f"{t['annot.promoted_text']} {kind_words(kind)} "
                                 f"{t.get(f'rung.short.{name}', name)} v{version}",
                            tags=("promotion", kind)))
    return events
