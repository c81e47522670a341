"""HTTP for the connectors: one GET with a timeout, retries with backoff, typed errors.

Retries on 429 and 5xx (honouring ``Retry-After`` when it is a number of seconds, capped) and on
timeouts/connection errors; any other status, or a body that is not JSON, raises
:class:`SourceError` with one line naming the source.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx

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


def get_json(client: httpx.Client, url: str, params: dict[str, Any] | None, *, source: str,
             retries: int = 4, backoff_s: float = 0.5) -> Any:
    """GET ``url`` and decode JSON; retry 429/5xx/timeouts ``retries`` times, doubling waits."""
    last = ""
    for attempt in range(retries + 1):
        wait = backoff_s * (2**attempt)
        try:
            resp = client.get(url, params=params)
        except httpx.TimeoutException:
            last = f"timed out after {client.timeout.read or 0:g} s"
        except httpx.TransportError as exc:
            last = f"cannot reach {httpx.URL(url).host}: {type(exc).__name__} {exc}".strip()
        else:
            if resp.status_code in RETRY_STATUSES:
                last = f"HTTP {resp.status_code} from {resp.url.host}"
                after = resp.headers.get("Retry-After", "")
                if after.replace(".", "", 1).isdigit():
                    wait = min(float(after), MAX_RETRY_AFTER_S)
            elif resp.status_code >= 400:
                raise SourceError(
                    f"{source}: HTTP {resp.status_code} from {resp.url.host}{resp.url.path}: "
                    f"{_short(resp.text)}")
            else:
                try:
                    return resp.json()
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise SourceError(
                        f"{source}: response from {resp.url.host}{resp.url.path} is not valid "
                        f"JSON ({exc.__class__.__name__}: {_short(str(exc), 80)})") from None
        if attempt < retries:
            log.info("%s: %s; retry %d/%d in %.1f s", source, last, attempt + 1, retries, wait)
            time.sleep(wait)
    raise SourceError(f"{source}: {last} (gave up after {retries + 1} attempt(s))")
