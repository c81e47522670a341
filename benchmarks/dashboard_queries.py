"""Time every dashboard panel query (expanded as Grafana does) on the configured store.

Run after ``ecodemo demo`` (or with ECODEMO_DATABASE_URL): prints each query's best-of-5 time
next to the 200 ms reference. Ranges: territory anchored on the latest forecast issue
(-5 d, +48 h), models over the whole data span, wall-clock panels over their own window.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ecodemo.config import load_settings
from ecodemo.dashboards.build import build_all
from ecodemo.dashboards.grafana_sql import QueryContext, Variable, expand, relative_range
from ecodemo.store.connection import connect

REFERENCE_MS = 200.0


def time_panel_queries(conn: psycopg.Connection, repeats: int, *,
                       anchor_on_last_reading: bool = False
                       ) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any],
                                           float, int]]:
    """Yield (dashboard, panel, target, best seconds of ``repeats``, rows) for every panel query.

    Ranges: wall-clock panels over their own window, frugality over the last 30 days, territory
    anchored on the latest forecast issue (-5 d, +48 h; the last reading when there is no
    forecast and ``anchor_on_last_reading``), the rest over the whole data span.
    """
    now = datetime.now(UTC)
    issued = conn.execute("SELECT max(issued_at) FROM forecasts").fetchone()[0]  # type: ignore[index]
    first, last = conn.execute("SELECT min(ts), max(ts) FROM readings").fetchone()  # type: ignore[misc]
    if anchor_on_last_reading:
        issued = issued or last
    for d in build_all("fr").values():
        variables = {v["name"]: Variable([str(r[0]) for r in conn.execute(v["query"])])
                     for v in d["templating"]["list"]}
        for p in d["panels"]:
            for t in p.get("targets", []):
                if p.get("timeFrom"):
                    start, end = relative_range(now, p["timeFrom"])
                elif d["uid"] == "ecodemo-frugality":
                    start, end = now - timedelta(days=30), now
                elif d["uid"] == "ecodemo-territory" and issued:
                    start, end = issued - timedelta(days=5), issued + timedelta(hours=48)
                else:
                    start, end = first, last + timedelta(days=2)
                sql = expand(t["rawSql"], QueryContext(start, end, variables, 3_600_000))
                best, n = float("inf"), 0
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    n = len(conn.execute(sql.encode()).fetchall())
                    best = min(best, time.perf_counter() - t0)
                yield d, p, t, best, n


def main() -> None:
    with connect(load_settings(), autocommit=True) as conn:
        print(f"{'dashboard / panel / ref':70} {'best ms':>8} {'ref ms':>7} rows")
        for d, p, t, best, n in time_panel_queries(conn, 5):
            name = f"{d['uid']} / {p['title'][:40]} / {t['refId']}"
            print(f"{name:70} {best * 1000:8.1f} {REFERENCE_MS:7.0f} {n}")


if __name__ == "__main__":
    main()
