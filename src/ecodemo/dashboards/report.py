"""A self-contained HTML report (and its A4 PDF): the verdict first, then the territory, the
models, and the detail tables for specialists.

The page opens offline (CSS, JavaScript and data inlined; no CDN) and reads well on a laptop
and a phone. Tables reuse the dashboards' own panel SQL, expanded as Grafana would expand it,
so the report and Grafana agree. Every energy figure is shown with how it was measured
(``compute_runs.measurement_method``, as a numbered legend): without RAPL it is an estimate.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from ecodemo.config import Settings
from ecodemo.dashboards import frugality, models_pipeline, territory, verdict
from ecodemo.dashboards import humanize as hz
from ecodemo.dashboards.grafana_sql import QueryContext, Variable, expand
from ecodemo.dashboards.labels import Lang, labels
from ecodemo.energy.practices import frugal_practices
from ecodemo.store.connection import connect

Rows = tuple[list[str], list[tuple[Any, ...]]]


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float | Decimal) and not isinstance(v, bool) else None


class _Store:
    """Runs panel SQL with all sites/kinds selected over a given time range."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.now = datetime.now(UTC)
        sites = [r[0] for r in conn.execute("SELECT site_id FROM sites ORDER BY 1")]
        kinds = [r[0] for r in conn.execute("SELECT DISTINCT kind FROM sensors ORDER BY 1")]
        self.variables = {"site": Variable(sites or ["-"]), "kind": Variable(kinds or ["-"])}

    def panel(self, sql: str, start: datetime, end: datetime,
              interval_ms: int = 3_600_000) -> Rows:
        cur = self.conn.execute(expand(sql, QueryContext(start, end, self.variables,
                                                        interval_ms)).encode())
        return [c.name for c in cur.description or []], cur.fetchall()

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql.encode(), params).fetchall()  # type: ignore[arg-type]


def site_names(conn: psycopg.Connection) -> dict[str, tuple[str, str]]:
    """site_id -> (short display name, full name); the catalogue's ``short_name`` when given,
    else one derived from the full name."""
    return {sid: (short or hz.short_name(name), name) for sid, name, short in conn.execute(
        "SELECT site_id, name, attributes->>'short_name' FROM sites")}


def _forecast_charts(store: _Store, t: dict[str, str], lang: Lang) -> list[dict[str, Any]]:
    """Per sensor: the latest issue (promoted model preferred), actuals around it, the band."""
    charts: list[dict[str, Any]] = []
    issues = store.rows(
        """SELECT DISTINCT ON (f.sensor_id) f.sensor_id, f.model_id, f.issued_at, se.site_id,
                  se.unit, m.name
           FROM forecasts f JOIN sensors se ON se.sensor_id = f.sensor_id
           LEFT JOIN models m ON m.model_id = f.model_id
           ORDER BY f.sensor_id, f.issued_at DESC, (m.status = 'promoted') DESC NULLS LAST""")
    names = site_names(store.conn)
    for sensor_id, model_id, issued, site_id, unit, model in issues:
        fc = store.rows(
            """SELECT ts, p10, p50, p90 FROM forecasts WHERE sensor_id = %s AND model_id = %s
               AND issued_at = %s AND ts <= %s ORDER BY ts""",
            (sensor_id, model_id, issued, issued + timedelta(hours=48)))
        actual = store.rows(
            """SELECT date_trunc('hour', ts) AS h, avg(value) FROM readings
               WHERE sensor_id = %s AND ts > %s AND ts <= %s GROUP BY 1 ORDER BY 1""",
            (sensor_id, issued - timedelta(hours=72), issued + timedelta(hours=48)))
        short, full = names.get(site_id, (sensor_id, sensor_id))
        rung = t.get(f"rung.{model}", model or model_id)
        charts.append({
            "id": f"fc-{len(charts)}", "title": short, "full": full, "type": "line",
            "unit": hz.unit(unit, lang),
            "subtitle": t["forecast.issued"].format(model=rung, when=hz.when(issued, lang)),
            "series": [
                {"name": t["actual"], "color": "#2ca02c",
                 "points": [[_ms(h), _num(v)] for h, v in actual]},
                {"name": t["p50"], "color": "#1f77b4", "dash": True,
                 "points": [[_ms(ts), _num(p50)] for ts, _, p50, _ in fc]},
            ],
            "band": {"name": t["band"], "points": [[_ms(ts), _num(p10), _num(p90)]
                                                   for ts, p10, _, p90 in fc
                                                   if p10 is not None and p90 is not None]},
        })
    return charts


# Day-ahead forecasts as issued against what happened, one point per Paris day and model; the
# no-AI line repeats the same hour one season earlier (the day before for solar and wind, the
# week before for transport) on the same target hours. As in the backtest
# (ecodemo.models.metrics), a sensor's error is divided by its mean |measurement| over all the
# evaluated points (here every day shown), not by one day's: a winter day's few solar hours
# made that day's own mean near zero and its figure ~10 000 %. Sensors count equally.
DAILY_ACCURACY_SQL = """
    WITH pairs AS (
        SELECT se.kind, f.sensor_id, coalesce(m.name, f.model_id) AS model,
               (f.ts AT TIME ZONE 'Europe/Paris')::date AS day,
               abs(f.p50 - r.value) AS err, abs(r.value) AS val, abs(b.value - r.value) AS b_err
        FROM forecasts f
        JOIN sensors se ON se.sensor_id = f.sensor_id
        JOIN readings r ON r.sensor_id = f.sensor_id AND r.ts = f.ts
        LEFT JOIN readings b ON b.sensor_id = f.sensor_id AND b.ts = f.ts - CASE
            WHEN se.kind IN ('solar', 'wind') THEN interval '1 day' ELSE interval '7 days' END
        LEFT JOIN models m ON m.model_id = f.model_id
        WHERE f.ts > f.issued_at AND f.ts <= f.issued_at + interval '24 hours'
    ),
    level AS (
        SELECT sensor_id, model, avg(val) AS level FROM pairs GROUP BY 1, 2
    ),
    per_sensor AS (
        SELECT p.kind, p.model, p.day, p.sensor_id, avg(p.err) / nullif(l.level, 0) AS nmae,
               avg(p.b_err) / nullif(l.level, 0) AS b_nmae
        FROM pairs p JOIN level l ON l.sensor_id = p.sensor_id AND l.model = p.model
        GROUP BY p.kind, p.model, p.day, p.sensor_id, l.level
    )
    SELECT kind, model, day, 100 * avg(nmae) AS nmae_pct, 100 * avg(b_nmae) AS baseline_nmae_pct
    FROM per_sensor GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


def _day_ms(d: Any) -> int:
    return _ms(datetime(d.year, d.month, d.day, 12, tzinfo=UTC))


def _accuracy_charts(store: _Store, t: dict[str, str]) -> list[dict[str, Any]]:
    by_kind: dict[str, dict[str, list[Any]]] = {}
    base: dict[str, dict[int, float | None]] = {}
    for kind, model, day, nmae, b_nmae in store.rows(DAILY_ACCURACY_SQL):
        name = t.get(f"rung.short.{model}", str(model))
        by_kind.setdefault(kind, {}).setdefault(name, []).append([_day_ms(day), _num(nmae)])
        base.setdefault(kind, {})[_day_ms(day)] = _num(b_nmae)
    out = []
    for i, kind in enumerate(sorted(by_kind)):
        series: list[dict[str, Any]] = [{"name": k, "points": v}
                                        for k, v in sorted(by_kind[kind].items())]
        series.append({"name": t["acc.baseline"], "dash": True, "color": "#7f7f7f",
                       "points": sorted([x, y] for x, y in base[kind].items())})
        out.append({"id": f"acc-{i}", "kind": kind, "type": "line", "unit": "%", "band": None,
                    "xDays": True, "series": series})
    return out


def _frontier_charts(store: _Store, t: dict[str, str]) -> list[dict[str, Any]]:
    """Per kind, the ladder's rungs as (energy to train and predict, error): the frontier it
    chooses on, the chosen rung marked."""
    out = []
    for i, (kind, chosen, candidates) in enumerate(store.rows(
            """SELECT DISTINCT ON (kind) kind, chosen_name, candidates FROM model_choices
               ORDER BY kind, decided_at DESC""")):
        pts = []
        for c in candidates if isinstance(candidates, list) else []:
            kwh = [c.get("train_energy_kwh"), c.get("predict_energy_kwh")]
            if None in kwh or c.get("nmae") is None:
                continue
            pts.append({"x": sum(kwh) * 3.6e6, "y": 100 * c["nmae"],
                        "label": t.get(f"rung.short.{c['name']}", c["name"]),
                        "group": t["frontier.chosen" if c["name"] == chosen
                                   else "frontier.other"],
                        "color": "#2e7d32" if c["name"] == chosen else "#1f77b4"})
        out.append({"id": f"frontier-{i}", "kind": kind, "type": "scatter", "logX": True,
                    "xUnit": "J", "yUnit": "%", "points": pts})
    return out


def _stage_chart(store: _Store, far_past: datetime, t: dict[str, str]) -> dict[str, Any]:
    cols, rows = store.panel(frugality.PER_STAGE_MODEL_SQL, far_past, store.now)
    ci = {c: i for i, c in enumerate(cols)}
    stages: dict[str, float] = {}
    for r in rows:
        stages[r[ci["stage"]]] = stages.get(r[ci["stage"]], 0.0) + (
            _num(r[ci["energy_kwh"]]) or 0.0)
    names = sorted(stages)
    top = max(stages.values(), default=0.0)
    unit, size = ("J", 1 / 3.6e6) if top < 1e-3 else ("Wh", 1e-3) if top < 1 else ("kWh", 1.0)
    return {"type": "bar", "unit": unit, "categories": [t.get(f"stage.{n}", n) for n in names],
            "series": [{"name": t["chart.energy"], "values": [stages[n] / size for n in names]}]}


def collect(conn: psycopg.Connection, lang: Lang = "fr") -> dict[str, Any]:
    """Everything the report shows, as JSON-able data and (columns, rows) tables."""
    t = labels(lang)
    s = _Store(conn)
    now = s.now
    far_past = datetime(2000, 1, 1, tzinfo=UTC)
    data: dict[str, Any] = {"generated_at": now, "charts": {}}
    charts: dict[str, Any] = data["charts"]
    names = site_names(conn)
    data["cards"] = verdict.collect_cards(conn, hz.short_name)
    data["sites"] = s.panel(territory.MAP_SQL, far_past, now + timedelta(days=2))
    data["site_names"] = names
    _, quality = s.panel(territory.quality_sql(t, lang), far_past, now + timedelta(days=2))
    data["quality"] = [str(r[2]) for r in quality]
    data["forecasts"] = []
    for c in _forecast_charts(s, t, lang):
        charts[c["id"]] = c
        data["forecasts"].append({k: c[k] for k in ("id", "title", "full", "subtitle")})
    data["accuracy"] = []
    for c in _accuracy_charts(s, t):
        charts[c["id"]] = c
        data["accuracy"].append({"id": c["id"], "kind": c["kind"]})
    data["frontier"] = []
    for c in _frontier_charts(s, t):
        charts[c["id"]] = c
        data["frontier"].append({"id": c["id"], "kind": c["kind"]})
    charts["energy-stage"] = _stage_chart(s, far_past, t)

    data["choices"] = s.panel(models_pipeline.CHOICE_SQL, far_past, now)
    data["versions"] = s.panel(models_pipeline.VERSIONS_SQL, far_past, now)
    data["freshness"] = s.panel(models_pipeline.FRESHNESS_SQL, far_past, now)
    week = now - timedelta(days=7)
    data["failures"] = s.panel(models_pipeline.FAILURES_SQL, week, now)
    data["per_stage"] = s.panel(frugality.PER_STAGE_MODEL_SQL, far_past, now)
    data["methods"] = s.panel(frugality.METHODS_SQL, far_past, now)
    data["balances"] = s.panel(frugality.BALANCE_TABLE_SQL, far_past, now)
    data["practices"] = frugal_practices(conn)
    # the sites with their full names, where the rest of the report shows short ones
    scols, srows = data["sites"]
    keep = [scols.index(c) for c in ("name", "full_name", "kind", "unit")]
    data["site_table"] = (["short_name", "full_name", "kind", "unit"],
                          [tuple(r[i] for i in keep) for r in srows])
    return data


def write_html_report(settings: Settings, path: Path, lang: Lang = "fr", *,
                      for_print: bool = False) -> Path:
    """Read the store and write the self-contained report to ``path``; returns ``path``."""
    from ecodemo.dashboards.report_html import render_html

    with connect(settings) as conn:
        data = collect(conn, lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data, lang, for_print=for_print), encoding="utf-8")
    return path


def write_pdf_report(settings: Settings, path: Path, lang: Lang = "fr") -> Path:
    """The same report as an A4 PDF (headless Chromium prints it, charts drawn first)."""
    import tempfile

    from ecodemo.dashboards.pdf import print_pdf

    with tempfile.TemporaryDirectory(prefix="ecodemo-pdf-") as tmp:
        page = write_html_report(settings, Path(tmp) / "report.html", lang, for_print=True)
        return print_pdf(page, path)
