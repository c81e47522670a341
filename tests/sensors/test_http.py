"""get_json's retry policy against the local test server (recorded payloads, scripted faults)."""

from __future__ import annotations

import logging
import time

import pytest

from ecodemo.errors import SourceError
from ecodemo.sensors import http
from tests.sensors.http_server import Fault, ServerState

RECORDS = "/api/explore/v2.1/catalog/datasets/comptages-routiers-permanents/records"


def _get(server: str, **kw: float) -> object:
    with http.make_client(timeout_s=2.0) as client:
        return http.get_json(client, server + RECORDS, {"limit": 1}, source="src-a", **kw)


def test_backoff_doubles_with_jitter_and_each_retry_is_logged(server, server_state: ServerState,
                                                              caplog) -> None:
    server_state.faults = [Fault(503, b"busy"), Fault(500, b"oops")]
    caplog.set_level(logging.INFO, logger="ecodemo.sensors.http")
    t0 = time.perf_counter()
    body = _get(server, retries=2, backoff_s=0.1)
    elapsed = time.perf_counter() - t0
    assert isinstance(body, dict) and body["results"]
    assert len(server_state.requests) == 3
    # waits: 0.1 + [0, 0.1) then 0.2 + [0, 0.1)
    assert 0.3 <= elapsed < 0.3 + 0.2 + 1.0
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("src-a: HTTP 503 from 127.0.0.1; retry 1/2 in 0.")
    assert lines[1].startswith("src-a: HTTP 500 from 127.0.0.1; retry 2/2 in 0.")


def test_retry_after_seconds_is_honoured_and_capped(server, server_state: ServerState,
                                                    monkeypatch) -> None:
    server_state.faults = [Fault(429, b"slow down", headers={"Retry-After": "0.4"})]
    t0 = time.perf_counter()
    _get(server, retries=1, backoff_s=0.0)
    assert time.perf_counter() - t0 >= 0.4
    monkeypatch.setattr(http, "MAX_RETRY_AFTER_S", 0.05)
    server_state.faults = [Fault(429, b"slow down", headers={"Retry-After": "3600"})]
    t0 = time.perf_counter()
    _get(server, retries=1, backoff_s=0.0)
    assert time.perf_counter() - t0 < 5


def test_client_error_is_not_retried(server, server_state: ServerState) -> None:
    server_state.faults = [Fault(404, b'{"error_code": "DatasetNotFound"}')]
    with pytest.raises(SourceError, match=r"^src-a: HTTP 404 from 127\.0\.0\.1/api/") as err:
        _get(server, retries=3, backoff_s=0.0)
    assert "\n" not in str(err.value) and len(server_state.requests) == 1


def test_gives_up_with_the_last_reason_in_one_line(server, server_state: ServerState) -> None:
    server_state.faults = [Fault(502, b"bad gateway")] * 3
    with pytest.raises(SourceError) as err:
        _get(server, retries=2, backoff_s=0.0)
    assert str(err.value) == "src-a: HTTP 502 from 127.0.0.1 (gave up after 3 attempt(s))"
    assert len(server_state.requests) == 3


def test_unreachable_host_is_a_source_error(server_state: ServerState) -> None:
    with http.make_client(timeout_s=1.0) as client, pytest.raises(SourceError) as err:
        # port 9 (discard) on localhost: nothing listens, the connection is refused at once
        http.get_json(client, "http://127.0.0.1:9/x", None, source="src-b", retries=1,
                      backoff_s=0.0)
    assert str(err.value).startswith("src-b: cannot reach 127.0.0.1: ConnectError")
