"""The report's accuracy figures are scored as the backtest scores them (ecodemo.models.metrics):
per sensor, the mean absolute error over the evaluated points divided by the mean |measurement|
over the same points, then the mean over sensors. Checked here against the same figures
computed in Python from the stored rows, on a store filled by the demo (solar nights included).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest

from ecodemo.dashboards.grafana_sql import QueryContext, Variable, expand
from ecodemo.dashboards.labels import labels
from ecodemo.dashboards.report import DAILY_ACCURACY_SQL
from ecodemo.dashboards.territory import quality_sql
from tests.pipeline_rows import FilledStore

PARIS = ZoneInfo("Europe/Paris")


def _expected_quality(conn: psycopg.Connection) -> dict[str, float]:
    rows = conn.execute("""
        SELECT e.kind, e.sensor_id, e.mae, e.nmae, e.n, e.period_end
        FROM evaluations e
        JOIN (SELECT DISTINCT ON (kind) kind, chosen_name FROM model_choices
              ORDER BY kind, decided_at DESC) c
          ON c.kind = e.kind AND c.chosen_name = e.model_name
        WHERE e.source = 'live' AND e.sensor_id <> '__all__' AND e.mae IS NOT NULL
          AND e.n > 0""").fetchall()
    last = {k: max(r[5] for r in rows if r[0] == k) for k in {r[0] for r in rows}}
    err: dict[tuple[str, str], float] = defaultdict(float)
    level: dict[tuple[str, str], float] = defaultdict(float)
    for kind, sensor, mae, nmae, n, end in rows:
        if end <= last[kind] - timedelta(days=30):
            continue
        err[kind, sensor] += mae * n
        if nmae is None:
            continue            # no mean |actual| to divide by: measured zero on average
        if nmae > 0:
            level[kind, sensor] += mae / nmae * n
    per_kind: dict[str, list[float]] = defaultdict(list)
    for (kind, sensor), e in err.items():
        if level[kind, sensor] > 0:
            per_kind[kind].append(e / level[kind, sensor])
    return {k: 100 * float(np.mean(v)) for k, v in per_kind.items()}


def test_territory_quality_pools_the_errors_as_the_backtest(filled_store: FilledStore) -> None:
    with psycopg.connect(filled_store.url, autocommit=True) as conn:
        sites = [r[0] for r in conn.execute("SELECT site_id FROM sites")]
        end = conn.execute("SELECT max(period_end) FROM evaluations").fetchone()[0]
        ctx = QueryContext(end - timedelta(days=60), end + timedelta(days=2),
                           {"site": Variable(sites)})
        got = {k: v for k, v, _phrase in
               conn.execute(expand(quality_sql(labels("fr"), "fr"), ctx)).fetchall()}
        expected = _expected_quality(conn)
        # the former figure: per-horizon nMAEs averaged, weighted by their points
        naive = dict(conn.execute("""
            SELECT e.kind, 100 * sum(e.nmae * e.n) / sum(e.n) FROM evaluations e
            WHERE e.source = 'live' AND e.sensor_id <> '__all__' AND e.nmae IS NOT NULL
              AND e.model_name = (SELECT chosen_name FROM model_choices c
                                  WHERE c.kind = e.kind ORDER BY decided_at DESC LIMIT 1)
            GROUP BY 1""").fetchall())
    assert got and set(got) == set(expected)
    for kind, pct in got.items():
        assert pct == pytest.approx(round(expected[kind]), abs=0.5), kind
    if "solar" in got:   # night horizons no longer blow the figure up
        assert got["solar"] < 100 < naive["solar"], (got, naive)


def test_daily_accuracy_divides_by_the_period_level(filled_store: FilledStore) -> None:
    with psycopg.connect(filled_store.url, autocommit=True) as conn:
        got = {(k, m, d): (float(v), None if b is None else float(b))
               for k, m, d, v, b in conn.execute(DAILY_ACCURACY_SQL).fetchall()
               if v is not None}
        pairs = conn.execute("""
            SELECT se.kind, f.sensor_id, coalesce(m.name, f.model_id), f.ts, f.p50, r.value
            FROM forecasts f JOIN sensors se USING (sensor_id)
            JOIN readings r ON r.sensor_id = f.sensor_id AND r.ts = f.ts
            LEFT JOIN models m ON m.model_id = f.model_id
            WHERE f.ts > f.issued_at AND f.ts <= f.issued_at + interval '24 hours'""").fetchall()
    vals: dict[tuple[str, str], list[float]] = defaultdict(list)
    errs: dict[tuple[str, str, object, str], list[float]] = defaultdict(list)
    for kind, sensor, model, ts, p50, actual in pairs:
        vals[sensor, model].append(abs(actual))
        errs[kind, model, ts.astimezone(PARIS).date(), sensor].append(abs(p50 - actual))
    per_day: dict[tuple[str, str, object], list[float]] = defaultdict(list)
    for (kind, model, day, sensor), e in errs.items():
        level = float(np.mean(vals[sensor, model]))
        if level > 0:
            per_day[kind, model, day].append(float(np.mean(e)) / level)
    expected = {k: 100 * float(np.mean(v)) for k, v in per_day.items()}
    assert got and set(got) == set(expected)
    for key, (pct, _baseline) in got.items():
        assert pct == pytest.approx(expected[key], rel=1e-6), key
    solar = [pct for (kind, _m, _d), (pct, _b) in got.items() if kind == "solar"]
    if solar:   # a dull winter day's few sunny hours no longer make it ~10 000 %
        assert max(solar) < 1000, solar
