"""A local HTTP server on 127.0.0.1 that answers like the real APIs, from recorded payloads.

Opendatasoft: ``/api/explore/v2.1/catalog/datasets/<id>/records`` (limit/offset paging,
``select``, and the subset of ODSQL ``where`` the connector sends: series equality and time
comparisons) and ``/exports/json``. Open-Meteo: ``/v1/archive`` and ``/v1/forecast`` (hourly
arrays cut to start_date..end_date). ``faults`` queues scripted answers (429, 500, a delay,
malformed JSON...) served before normal answers, to exercise retries and errors.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
_EQ = re.compile(r"`(\w+)` = '((?:[^'\\]|\\.)*)'")
_CMP = re.compile(r"`(\w+)` (>=|>|<) date'([^']+)'")


@dataclass
class Fault:
    status: int = 200
    body: bytes = b""
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ServerState:
    datasets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    open_meteo: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    max_window: int = 10_000
    rename: dict[str, str] = field(default_factory=dict)  # simulate a renamed field


def load_dataset(name: str) -> list[dict[str, Any]]:
    return json.loads((PAYLOADS / "opendatasoft" / f"{name}.records.json").read_text())["results"]


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _filter(records: list[dict[str, Any]], where: str | None) -> list[dict[str, Any]]:
    if not where:
        return records
    out = records
    for f, v in _EQ.findall(where):
        out = [r for r in out if str(r.get(f)) == v.replace("\\'", "'")]
    for f, op, v in _CMP.findall(where):
        bound = _parse_ts(v)
        if op == ">":
            out = [r for r in out if _parse_ts(r[f]) > bound]
        elif op == ">=":
            out = [r for r in out if _parse_ts(r[f]) >= bound]
        else:
            out = [r for r in out if _parse_ts(r[f]) < bound]
    return out


def _select(records: list[dict[str, Any]], select: str | None) -> list[dict[str, Any]]:
    if not select:
        return records
    names = [s.strip().strip("`") for s in select.split(",")]
    return [{n: r[n] for n in names if n in r} for r in records]


class _Handler(BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        url = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        st = self.state
        st.requests.append((url.path, q))
        if st.faults:
            fault = st.faults.pop(0)
            if fault.delay_s:
                time.sleep(fault.delay_s)
            if fault.status != 200 or fault.body:
                self._send(fault.status, fault.body, fault.headers)
                return
        m = re.match(r"^/api/explore/v2\.1/catalog/datasets/([\w-]+)/(records|exports/json)$",
                     url.path)
        if m:
            ds, kind = m.groups()
            if ds not in st.datasets:
                self._send(404, json.dumps({"error_code": "DatasetNotFound",
                                            "message": f"Unknown dataset: {ds}"}).encode())
                return
            rows = _filter(st.datasets[ds], q.get("where"))
            order = (q.get("order_by") or "").strip("`")
            if order:
                rows = sorted(rows, key=lambda r: _parse_ts(r[order]))
            rows = _select(rows, q.get("select"))
            if st.rename:
                rows = [{st.rename.get(k, k): v for k, v in r.items()} for r in rows]
            if kind == "exports/json":
                self._send(200, json.dumps(rows).encode())
                return
            limit, offset = int(q.get("limit", 10)), int(q.get("offset", 0))
            if limit > 100 or offset + limit > st.max_window:
                self._send(400, json.dumps({
                    "error_code": "InvalidRESTParameterError",
                    "message": "Invalid value for limit/offset"}).encode())
                return
            body = {"total_count": len(rows), "results": rows[offset:offset + limit]}
            self._send(200, json.dumps(body).encode())
            return
        if url.path in ("/v1/archive", "/v1/forecast", "/previous-runs/v1/forecast"):
            name = "previous-runs" if url.path.startswith("/previous-runs/") else \
                url.path.rsplit("/", 1)[1]
            doc = st.open_meteo.get(name)
            if doc is None:
                self._send(404, b'{"error":true,"reason":"Not Found"}')
                return
            self._send(200, json.dumps(_cut_open_meteo(doc, q)).encode())
            return
        self._send(404, b'{"error":true,"reason":"Not Found"}')


def _cut_open_meteo(doc: dict[str, Any], q: dict[str, str]) -> dict[str, Any]:
    out = json.loads(json.dumps(doc))
    times = out["hourly"]["time"]
    start, end = q.get("start_date"), q.get("end_date")
    keep = [i for i, t in enumerate(times)
            if (start is None or t[:10] >= start) and (end is None or t[:10] <= end)]
    wanted = (q.get("hourly") or "").split(",")
    out["hourly"] = {k: [v[i] for i in keep] for k, v in out["hourly"].items()
                     if k == "time" or not wanted[0] or k in wanted}
    out["hourly_units"] = {k: v for k, v in out["hourly_units"].items() if k in out["hourly"]}
    out["latitude"] = float(q.get("latitude", out["latitude"]))
    out["longitude"] = float(q.get("longitude", out["longitude"]))
    return out


@contextmanager
def serve(state: ServerState) -> Iterator[str]:
    """Run the server in a thread; yield its base URL (http://127.0.0.1:<port>)."""
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
