"""Publishing against a STAND-IN for the Grafana HTTP API on 127.0.0.1.

No Grafana server can run here. The stand-in records each request and answers like Grafana's
documented API (folders, datasources, dashboards/db, annotations); the tests check method,
path, headers and body shape, then error statuses and a refused connection.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest
from pydantic import SecretStr

from ecodemo.config import Settings
from ecodemo.dashboards import stages
from ecodemo.errors import PublishError


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class GrafanaStandIn:
    """Stand-in for Grafana's HTTP API (not Grafana): state for folders, datasources,
    dashboards and annotations; ``fail`` forces a status on a path prefix."""

    requests: list[Seen] = field(default_factory=list)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    fail: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def handle(self, seen: Seen) -> tuple[int, Any]:
        self.requests.append(seen)
        for prefix, answer in self.fail.items():
            if seen.path.startswith(prefix):
                return answer
        m, p, b = seen.method, seen.path, seen.body
        if m == "GET" and p.startswith("/api/folders/"):
            uid = p.rsplit("/", 1)[1]
            return (200, self.folders[uid]) if uid in self.folders else (
                404, {"message": "folder not found"})
        if m == "POST" and p == "/api/folders":
            if b["uid"] in self.folders:
                return 409, {"message": "a folder with the same uid already exists"}
            self.folders[b["uid"]] = {"uid": b["uid"], "title": b["title"], "id": 1}
            return 200, self.folders[b["uid"]]
        if m == "GET" and p.startswith("/api/datasources/uid/"):
            uid = p.rsplit("/", 1)[1]
            return (200, self.datasources[uid]) if uid in self.datasources else (
                404, {"message": "Data source not found"})
        if m == "POST" and p == "/api/datasources":
            self.datasources[b["uid"]] = b
            return 200, {"id": 1, "message": "Datasource added", "name": b["name"]}
        if m == "POST" and p == "/api/dashboards/db":
            d = b["dashboard"]
            if not d.get("title"):
                return 400, {"message": "Dashboard title cannot be empty"}
            version = self.dashboards.get(d["uid"], {}).get("version", 0) + 1
            self.dashboards[d["uid"]] = {"body": b, "version": version}
            return 200, {"id": 1, "uid": d["uid"], "url": f"/d/{d['uid']}/x",
                         "status": "success", "version": version, "slug": "x"}
        if m == "GET" and p == "/api/annotations":
            tags = set(seen.query.get("tags", []))
            return 200, [a for a in self.annotations if tags <= set(a["tags"])]
        if m == "POST" and p == "/api/annotations":
            if not b.get("text"):
                return 400, {"message": "text field should not be empty"}
            self.annotations.append({**b, "id": len(self.annotations) + 1})
            return 200, {"id": len(self.annotations), "message": "Annotation added"}
        return 404, {"message": "Not found"}


@pytest.fixture()
def standin() -> Iterator[tuple[GrafanaStandIn, str]]:
    state = GrafanaStandIn()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlparse(self.path)
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            body = json.loads(raw) if raw else None
            status, answer = state.handle(Seen(self.command, url.path, parse_qs(url.query),
                                               {k.lower(): v for k, v in self.headers.items()},
                                               body))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def store(settings: Settings, conn: psycopg.Connection) -> Settings:
    """One promoted model and one measured training run in the store."""
    now = datetime.now(UTC)
    conn.execute("INSERT INTO models (model_id, kind, name, version, status, promoted_at) "
                 "VALUES ('bike-lgbm_small-v2', 'bike', 'lgbm_small', 2, 'promoted', %s)",
                 (now - timedelta(hours=1),))
    conn.execute("INSERT INTO compute_runs (run_id, stage, model_id, sensor_kind, started_at, "
                 "duration_s, energy_kwh, measurement_method) VALUES "
                 "(%s, 'train', 'bike-lgbm_small-v2', 'bike', %s, 9.5, 4.2e-5, %s)",
                 (uuid.uuid4(), now - timedelta(hours=2), "estimated: CPU load x TDP"))
    return settings


def _with(settings: Settings, url: str, **kw: Any) -> Settings:
    return settings.model_copy(update={"grafana_url": url, **kw})


def test_publish_creates_folder_datasource_dashboards_and_annotations(
        store: Settings, standin: tuple[GrafanaStandIn, str]) -> None:
    api, url = standin
    cfg = _with(store, url, grafana_token=SecretStr("glsa_test"),
                grafana_db_user="grafana_ro", grafana_db_password=SecretStr("ro-secret"))
    result = stages.publish(cfg)
    assert result["folder_created"] and result["datasource_created"]
    assert sorted(result["dashboards"]) == ["ecodemo-frugality", "ecodemo-models",
                                            "ecodemo-territory"]
    assert result["annotations_added"] == 2
    for r in api.requests:
        assert r.headers["authorization"] == "Bearer glsa_test"
        if r.method in ("POST", "PUT"):
            assert r.headers["content-type"].startswith("application/json")
    calls = [(r.method, r.path) for r in api.requests]
    assert calls[:4] == [("GET", "/api/folders/ecodemo"), ("POST", "/api/folders"),
                         ("GET", "/api/datasources/uid/ecodemo-postgres"),
                         ("POST", "/api/datasources")]
    assert calls.count(("POST", "/api/dashboards/db")) == 3
    folder = api.requests[1].body
    assert folder == {"title": "ecodemo", "uid": "ecodemo"}
    ds = api.datasources["ecodemo-postgres"]
    assert ds["type"] == "grafana-postgresql-datasource" and ds["access"] == "proxy"
    assert ds["user"] == "grafana_ro" and ds["secureJsonData"] == {"password": "ro-secret"}
    assert ds["jsonData"]["timescaledb"] is True and ds["jsonData"]["database"]
    for uid, saved in api.dashboards.items():
        body = saved["body"]
        assert body["overwrite"] is True and body["folderUid"] == "ecodemo"
        assert body["dashboard"]["uid"] == uid and "id" not in body["dashboard"]
        assert body["dashboard"]["panels"]
    texts = sorted(a["text"] for a in api.annotations)
    # worded as the dashboards' own annotations, in their language (French by default)
    assert texts[0].startswith("entraînement vélo LightGBM petit v2 · ")
    assert texts[0].endswith(" (estimation)") and "0,0" not in texts[0]
    assert texts[1] == "mis en service : vélo LightGBM petit v2"
    for a in api.annotations:
        assert isinstance(a["time"], int) and a["time"] > 1_600_000_000_000
        assert "ecodemo" in a["tags"]
    train = next(a for a in api.annotations if "training" in a["tags"])
    assert train["timeEnd"] - train["time"] == 9500

    again = stages.publish(cfg)  # idempotent: nothing created twice
    assert not again["folder_created"] and not again["datasource_created"]
    assert again["annotations_added"] == 0 and again["annotations_skipped"] == 2
    assert len(api.annotations) == 2
    assert all(d["version"] == 2 for d in api.dashboards.values())


def test_basic_auth(store: Settings, standin: tuple[GrafanaStandIn, str]) -> None:
    api, url = standin
    stages.publish(_with(store, url, grafana_user="admin",
                         grafana_password=SecretStr("pw:with:colons")))
    expected = "Basic " + base64.b64encode(b"admin:pw:with:colons").decode()
    assert {r.headers["authorization"] for r in api.requests} == {expected}


@pytest.mark.parametrize("prefix,status,words", [
    ("/api/folders", 401, "refused the credentials (401)"),
    ("/api/dashboards/db", 400, "rejected a request (400)"),
    ("/api/datasources", 500, "failed (500)"),
])
def test_error_statuses_are_one_line_publish_errors(
        store: Settings, conn: psycopg.Connection, standin: tuple[GrafanaStandIn, str],
        prefix: str, status: int, words: str) -> None:
    api, url = standin
    api.fail[prefix] = (status, {"message": f"boom {status}"})
    before = conn.execute("SELECT count(*) FROM compute_runs").fetchone()
    with pytest.raises(PublishError) as err:
        stages.publish(_with(store, url, grafana_token=SecretStr("t")))
    msg = str(err.value)
    assert words in msg and "\n" not in msg and url in msg
    assert conn.execute("SELECT count(*) FROM compute_runs").fetchone() == before
    assert not api.annotations


def test_refused_connection(store: Settings) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PublishError, match="cannot reach Grafana"):
        stages.publish(_with(store, f"http://127.0.0.1:{port}", grafana_token=SecretStr("t")))


def test_missing_url_or_credentials(store: Settings) -> None:
    with pytest.raises(PublishError, match="ECODEMO_GRAFANA_URL"):
        stages.publish(store)
    with pytest.raises(PublishError, match="credentials"):
        stages.publish(_with(store, "http://127.0.0.1:9"))
