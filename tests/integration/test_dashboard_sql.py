"""Every panel query of the committed dashboards, expanded as Grafana expands it, runs against
a store filled like the demo pipeline fills it: no error, rows, the right column types, fast.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ecodemo.dashboards.grafana_sql import (
    QueryContext,
    Variable,
    expand,
    panel_interval_ms,
    relative_range,
)
from tests.pipeline_rows import FilledStore

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
BUDGET_S = 0.200


@dataclass
class Case:
    dashboard: str
    title: str
    ref_id: str
    sql: str
    fmt: str
    ctx: QueryContext
    key: str  # panel and target: must return rows in at least one scope
    must_have_rows: bool  # rows required in this very scope


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DASHBOARDS / name).read_text(encoding="utf-8"))
    return data


def _variables(conn: psycopg.Connection, dashboard: dict[str, Any]) -> dict[str, Variable]:
    """Each query variable set to 'All': Grafana then sends every option, quoted."""
    out: dict[str, Variable] = {}
    for var in dashboard["templating"]["list"]:
        rows = conn.execute(var["query"]).fetchall()
        assert rows, f"variable {var['name']} has no options"
        out[var["name"]] = Variable([str(r[0]) for r in rows], multi=var["multi"])
    return out


def _range(store: FilledStore, conn: psycopg.Connection, uid: str,
           panel: dict[str, Any], site: str | None) -> tuple[datetime, datetime]:
    """The range a reader uses: wall clock for pipeline runs, data time for the data."""
    if panel.get("timeFrom"):
        return relative_range(store.now, panel["timeFrom"])
    if uid == "ecodemo-frugality":
        return store.now - timedelta(days=30), store.now
    if uid == "ecodemo-territory":
        if site:
            end = conn.execute("SELECT max(issued_at) FROM forecasts WHERE sensor_id = %s",
                               (site,)).fetchone()[0]
        else:
            end = conn.execute("SELECT max(issued_at) FROM forecasts").fetchone()[0]
        return end - timedelta(days=5), end + timedelta(hours=48)
    first, last = conn.execute("SELECT min(ts), max(ts) FROM readings").fetchone()
    return first, last + timedelta(days=2)


def _cases(store: FilledStore) -> list[Case]:
    cases: list[Case] = []
    with psycopg.connect(store.url) as conn:
        for name in sorted(p.name for p in DASHBOARDS.glob("ecodemo-*.json")):
            d = _load(name)
            variables = _variables(conn, d)
            for panel in d["panels"]:
                if panel["type"] in ("row", "text"):
                    continue
                repeat = panel.get("repeat")
                # The snapshot mixes eras (renewables 2013, transport 2020-21): on the
                # territory dashboard a reader picks one site and its dates, so every site is
                # tried alone (anchored on its own data) as well as 'All'.
                scopes: list[str | None] = list(variables["site"].values) if "site" in \
                    variables else []
                scopes = scopes if repeat else [None, *scopes]
                for site in scopes:
                    scoped = dict(variables)
                    if site is not None:
                        scoped["site"] = Variable([site], multi=True)
                    start, end = _range(store, conn, d["uid"], panel, site)
                    interval = panel_interval_ms(start, end, int(panel.get("maxDataPoints",
                                                                           1000)),
                                                 panel.get("interval"))
                    for target in panel["targets"]:
                        title = panel["title"] + (f" [{site}]" if site else "")
                        cases.append(Case(d["uid"], title, target["refId"], target["rawSql"],
                                          target["format"],
                                          QueryContext(start, end, scoped, interval),
                                          f"{d['uid']}/{panel['id']}/{target['refId']}",
                                          bool(repeat) or d["uid"] != "ecodemo-territory"))
            for ann in d["annotations"]["list"]:
                if ann["datasource"]["uid"] != "ecodemo-postgres":
                    continue
                cases.append(Case(d["uid"], "annotation " + ann["name"], "Anno",
                                  ann["target"]["rawSql"], "table",
                                  QueryContext(store.now - timedelta(days=30), store.now,
                                               variables),
                                  f"{d['uid']}/annotation/{ann['name']}", True))
    return cases


def _numeric(v: object) -> bool:
    return isinstance(v, int | float | Decimal) and not isinstance(v, bool)


def _headers() -> dict[str, tuple[dict[str, str], str | None]]:
    """Per table target: the words its panel shows for the SQL's columns (organize renames,
    display-name overrides) and, for a stat, the regex of the fields it shows."""
    out = {}
    for name in sorted(p.name for p in DASHBOARDS.glob("ecodemo-*.json")):
        d = _load(name)
        for panel in d["panels"]:
            rename: dict[str, str] = {}
            for tr in panel.get("transformations") or []:
                if tr["id"] == "organize":
                    rename.update(tr["options"].get("renameByName", {}))
            for o in panel.get("fieldConfig", {}).get("overrides", []):
                for prop in o["properties"]:
                    if o["matcher"]["id"] == "byName" and prop["id"] == "displayName":
                        rename[o["matcher"]["options"]] = prop["value"]
            shown = panel.get("options", {}).get("reduceOptions", {}).get("fields") \
                if panel["type"] == "stat" else None
            for target in panel.get("targets", []):
                out[f"{d['uid']}/{panel['id']}/{target['refId']}"] = (rename, shown)
    return out


def test_every_panel_query_runs_and_returns_rows(filled_store: FilledStore) -> None:
    cases = _cases(filled_store)
    headers = _headers()
    no_words: list[str] = []
    assert len(cases) >= 35
    slow: list[str] = []
    with_rows: dict[str, int] = {}
    with psycopg.connect(filled_store.url, autocommit=True) as conn:
        for case in cases:
            sql = expand(case.sql, case.ctx)
            assert "$" not in sql.replace("$__all", ""), f"{case.title}: unexpanded {sql}"
            best = float("inf")
            for _ in range(3):  # best of three: the machine is shared
                t0 = time.perf_counter()
                cur = conn.execute(sql)
                rows = cur.fetchall()
                best = min(best, time.perf_counter() - t0)
            cols = [c.name for c in cur.description or []]
            where = f"{case.dashboard} / {case.title} / {case.ref_id}"
            assert rows or not case.must_have_rows, f"{where}: no rows\n{sql}"
            with_rows[case.key] = with_rows.get(case.key, 0) + bool(rows)
            if case.fmt == "time_series" and rows:
                assert "time" in cols, f"{where}: no time column in {cols}"
                ti = cols.index("time")
                assert all(isinstance(r[ti], datetime) or _numeric(r[ti]) for r in rows)
                value_cols = [i for i, c in enumerate(cols) if c not in ("time", "metric")]
                assert value_cols, f"{where}: no value column"
                for i in value_cols:
                    assert all(r[i] is None or _numeric(r[i]) for r in rows), (where, cols[i])
                    assert any(_numeric(r[i]) for r in rows), (where, cols[i])
                times = [r[ti] for r in rows]
                assert times == sorted(times), f"{where}: not ordered by time"
            if case.title.startswith("annotation"):
                assert {"time", "text", "tags"} <= set(cols)
            elif case.fmt == "table" and case.key in headers:
                # a table shows words, not column names (the catalogue's col.<name>)
                rename, fields = headers[case.key]
                if fields is not None:   # a stat shows only the fields its regex matches
                    cols = [c for c in cols if fields and re.fullmatch(fields.strip("/"), c)]
                shown = [rename.get(c, c) for c in cols]
                if [h for h in shown if "_" in h]:
                    no_words.append(f"{where}: {[h for h in shown if '_' in h]}")
            if best > BUDGET_S:
                slow.append(f"{where}: {best * 1000:.0f} ms")
    empty = [k for k, n in with_rows.items() if n == 0]
    assert not empty, f"panels with no rows in any scope: {empty}"
    assert not slow, "queries over 200 ms:\n" + "\n".join(slow)
    assert not no_words, "columns shown without a word header:\n" + "\n".join(no_words)


def test_variable_formatting_matches_grafana() -> None:
    ctx = QueryContext(datetime.fromisoformat("2024-01-01T00:00:00+00:00"),
                       datetime.fromisoformat("2024-01-01T01:00:00.5+00:00"),
                       {"site": Variable(["a", "b'c"]), "one": Variable(["x'y"], multi=False)},
                       interval_ms=3_600_000)
    sql = expand("SELECT $__timeGroupAlias(ts, $__interval) WHERE s IN ($site) AND o = '$one' "
                 "AND ${site:csv} AND $__timeFilter(ts) AND $__timeTo()", ctx)
    assert sql == ("SELECT floor(extract(epoch from ts)/3600)*3600 AS \"time\" WHERE "
                   "s IN ('a','b''c') AND o = 'x''y' AND a,b'c AND ts BETWEEN "
                   "'2024-01-01T00:00:00Z' AND '2024-01-01T01:00:00.5Z' AND "
                   "'2024-01-01T01:00:00.5Z'")
    ts = QueryContext(ctx.start, ctx.end, interval_ms=300_000, timescaledb=True)
    assert expand("$__timeGroup(ts, $__interval)", ts) == "time_bucket('300.000s',ts)"


def test_history_panel_sums_sites_per_kind_past_the_line_limit(filled_store: FilledStore
                                                               ) -> None:
    """With more sites chosen than lines allowed, one line per kind and unit: the sum over the
    sites of each sensor's hourly average (checked against the readings themselves)."""
    from ecodemo.dashboards.labels import labels
    from ecodemo.dashboards.territory import MOBILITY, history_sql

    t = labels("en")
    with psycopg.connect(filled_store.url, autocommit=True) as conn:
        sites = [r[0] for r in conn.execute("SELECT site_id FROM sites ORDER BY 1")]
        end = conn.execute("SELECT max(r.ts) FROM readings r JOIN sensors s USING (sensor_id) "
                           "WHERE s.kind = 'bike'").fetchone()[0]
        ctx = QueryContext(end - timedelta(days=2), end, {"site": Variable(sites)},
                           interval_ms=3_600_000)
        per_site = conn.execute(expand(history_sql(MOBILITY, t, "en"), ctx)).fetchall()
        totals = conn.execute(expand(history_sql(MOBILITY, t, "en", max_lines=1), ctx)
                              ).fetchall()
        expected = dict(conn.execute(
            """SELECT r.bucket, sum(a) FROM (
                   SELECT date_trunc('hour', ts) AS bucket, sensor_id, avg(value) AS a
                   FROM readings WHERE ts BETWEEN %s AND %s GROUP BY 1, 2) r
               JOIN sensors s USING (sensor_id)
               WHERE s.kind = 'bike' GROUP BY 1""",
            (ctx.start, ctx.end)).fetchall())
    n_bike = sum(1 for s in sites if "bike" in s)
    assert len({m for _t, m, _v in per_site}) > 1           # one line per site label
    metrics = {m for _t, m, _v in totals}
    bike_line = f"bike · {n_bike} sites, total (bicycles/h)"
    # bike, road traffic in vehicles/h (summed) and road occupancy in % (averaged)
    assert bike_line in metrics, metrics
    assert {m.rsplit(" (", 1)[1] for m in metrics} == {"bicycles/h)", "vehicles/h)", "%)"}
    assert any(m.endswith("sites, mean (%)") for m in metrics), metrics
    got = {ts: v for ts, m, v in totals if m == bike_line}
    assert got and len(got) == len(expected)
    for ts, v in got.items():
        assert float(v) == pytest.approx(float(expected[ts]), rel=1e-9), ts


def test_now_panel_shows_each_sensors_last_24_hours(filled_store: FilledStore) -> None:
    """Each chosen sensor's readings in the 24 h up to its latest reading at or before the end
    of the period, however long ago that is (sensors of different kinds stop years apart in
    the store: one range scan per distinct latest time must still give each its own 24 h)."""
    from ecodemo.dashboards.territory import NOW_SQL

    with psycopg.connect(filled_store.url, autocommit=True) as conn:
        sites = [r[0] for r in conn.execute("SELECT site_id FROM sites ORDER BY 1")]
        chosen = sites[::2]
        # the end of the period: before some sensors' last reading, after others'
        end = conn.execute("SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY last) FROM "
                           "(SELECT max(ts) AS last FROM readings GROUP BY sensor_id) x"
                           ).fetchone()[0]
        ctx = QueryContext(end - timedelta(days=2), end, {"site": Variable(chosen)},
                           interval_ms=3_600_000)
        got = conn.execute(expand(NOW_SQL, ctx)).fetchall()
        expected = conn.execute(
            """SELECT r.ts, r.sensor_id, r.value FROM sensors se
               JOIN LATERAL (SELECT max(ts) AS last_ts FROM readings
                             WHERE sensor_id = se.sensor_id AND ts <= %s) l ON true
               JOIN readings r ON r.sensor_id = se.sensor_id
                AND r.ts > l.last_ts - interval '24 hours' AND r.ts <= l.last_ts
               WHERE se.site_id = ANY(%s)""", (end, chosen)).fetchall()
    last_ts = {}
    for ts, sensor, _v in expected:
        last_ts[sensor] = max(ts, last_ts.get(sensor, ts))
    assert len(set(last_ts.values())) > 1, "the case needs sensors ending at different times"
    assert [t for t, _m, _v in got] == sorted(t for t, _m, _v in got)
    assert sorted((t, float(v)) for t, _m, v in got) == \
        sorted((t, float(v)) for t, _s, v in expected)
    # one line per sensor, each labelled with its site and unit
    assert len({m for _t, m, _v in got}) == len(last_ts)
