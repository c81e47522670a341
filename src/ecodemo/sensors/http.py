"""HTTP for the connectors: one GET with a timeout, retries with backoff, typed errors.

Retries on 429 and 5xx (honouring ``Retry-After`` when it is a number of seconds, capped) and on
timeouts/connection errors; any other status, or a body that is not JSON, raises
:class:`SourceError` with one line naming the source. The retry loop is tenacity's (stop, jittered
exponential wait, logging before each sleep); tenacity does not read ``Retry-After``, so the one
wait rule it lacks is kept here, as a wait strategy.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import tenacity

from ecodemo import __version__
from ecodemo.errors import SourceError

log = logging.getLogger(__name__)
USER_AGENT = f"ecodemo/{__version__} (+frugal-AI eco-demonstrator)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 60.0


def make_client(timeout_s: float = 30.0) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(timeout_s), headers={"User-Agent": USER_AGENT},
                        follow_redirects=True)


def _short(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


class _Retryable(Exception):
    """One failed attempt worth another: ``reason`` is the line a user reads if all fail."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


def _retry_after(state: tenacity.RetryCallState) -> float:
    """The server's ``Retry-After`` (seconds, capped) when it sent one, else NaN."""
    exc = state.outcome.exception() if state.outcome is not None else None
    after = exc.retry_after_s if isinstance(exc, _Retryable) else None
    return float("nan") if after is None else min(after, MAX_RETRY_AFTER_S)


class _WaitRetryAfterOrBackoff(tenacity.wait.wait_base):
    def __init__(self, backoff: tenacity.wait.wait_base) -> None:
        self.backoff = backoff

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        after = _retry_after(retry_state)
        return after if after == after else self.backoff(retry_state)


def _attempt(client: httpx.Client, url: str, params: dict[str, Any] | None,
             source: str) -> Any:
    try:
        resp = client.get(url, params=params)
    except httpx.TimeoutException:
        raise _Retryable(f"timed out after {client.timeout.read or 0:g} s") from None
    except httpx.TransportError as exc:
        raise _Retryable(
            f"cannot reach {httpx.URL(url).host}: {type(exc).__name__} {exc}".strip()) from None
    if resp.status_code in RETRY_STATUSES:
        after = resp.headers.get("Retry-After", "")
        raise _Retryable(f"HTTP {resp.status_code} from {resp.url.host}",
                         float(after) if after.replace(".", "", 1).isdigit() else None)
    if resp.status_code >= 400:
        raise SourceError(f"{source}: HTTP {resp.status_code} from {resp.url.host}"
                          f"{resp.url.path}: {_short(resp.text)}")
    try:
        return resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"{source}: response from {resp.url.host}{resp.url.path} is not valid "
            f"JSON ({exc.__class__.__name__}: {_short(str(exc), 80)})") from None


def get_json(client: httpx.Client, url: str, params: dict[str, Any] | None, *, source: str,
             retries: int = 4, backoff_s: float = 0.5) -> Any:
    """GET ``url`` and decode JSON; retry 429/5xx/timeouts ``retries`` times, the wait doubling
    from ``backoff_s`` (plus up to ``backoff_s`` of jitter, so that sensors failing together do
    not retry together), or the server's ``Retry-After``."""
    def log_retry(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.info("%s: %s; retry %d/%d in %.1f s", source, exc, state.attempt_number, retries,
                 wait)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(retries + 1),
        wait=_WaitRetryAfterOrBackoff(tenacity.wait_exponential_jitter(
            initial=backoff_s, jitter=backoff_s, max=MAX_RETRY_AFTER_S)),
        retry=tenacity.retry_if_exception_type(_Retryable),
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        return retrying(_attempt, client, url, params, source)
    except _Retryable as exc:
        raise SourceError(f"{source}: {exc} (gave up after {retries + 1} attempt(s))") from None
