"""A self-contained HTML report: the three dashboard views as interactive charts, one file.

The page opens offline (CSS, JavaScript and data inlined; no CDN) and reads well on a laptop
and a phone. Tables and figures reuse the dashboards' own panel SQL, expanded as Grafana would
expand it, so the report and Grafana always agree. Every energy figure is shown with how it was
measured (``compute_runs.measurement_method``): on machines without RAPL it is an estimate.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg

from ecodemo.config import Settings
from ecodemo.dashboards import frugality, models_pipeline, territory
from ecodemo.dashboards.grafana_sql import QueryContext, Variable, expand
from ecodemo.dashboards.labels import Lang, labels
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


def _forecast_charts(store: _Store, t: dict[str, str]) -> list[dict[str, Any]]:
    """Per sensor: the latest issue (promoted model preferred), actuals around it, the band."""
    charts: list[dict[str, Any]] = []
    issues = store.rows(
        """SELECT DISTINCT ON (f.sensor_id) f.sensor_id, f.model_id, f.issued_at, s.name,
                  se.unit, coalesce(m.name || ' v' || m.version, f.model_id)
           FROM forecasts f JOIN sensors se ON se.sensor_id = f.sensor_id
           JOIN sites s ON s.site_id = se.site_id
           LEFT JOIN models m ON m.model_id = f.model_id
           ORDER BY f.sensor_id, f.issued_at DESC, (m.status = 'promoted') DESC NULLS LAST""")
    for sensor_id, model_id, issued, name, unit, model in issues:
        fc = store.rows(
            """SELECT ts, p10, p50, p90 FROM forecasts WHERE sensor_id = %s AND model_id = %s
               AND issued_at = %s AND ts <= %s ORDER BY ts""",
            (sensor_id, model_id, issued, issued + timedelta(hours=48)))
        actual = store.rows(
            """SELECT date_trunc('hour', ts) AS h, avg(value) FROM readings
               WHERE sensor_id = %s AND ts > %s AND ts <= %s GROUP BY 1 ORDER BY 1""",
            (sensor_id, issued - timedelta(hours=72), issued + timedelta(hours=48)))
        charts.append({
            "id": f"fc-{len(charts)}", "title": f"{name}", "type": "line", "unit": unit,
            "subtitle": f"{model} · {issued:%Y-%m-%d %H:%M} UTC",
            "series": [
                {"name": t["actual"], "color": "#2ca02c",
                 "points": [[_ms(h), _num(v)] for h, v in actual]},
                {"name": t["p50"], "color": "#1f77b4", "dash": True,
                 "points": [[_ms(ts), _num(p50)] for ts, _, p50, _ in fc]},
            ],
            "band": {"name": "p10–p90", "points": [[_ms(ts), _num(p10), _num(p90)]
                                                   for ts, p10, _, p90 in fc
                                                   if p10 is not None and p90 is not None]},
        })
    return charts


def _series_by_metric(rows: list[tuple[Any, ...]], value_index: int = 2) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in rows:
        t0 = r[0]
        x = _ms(t0) if isinstance(t0, datetime) else int(float(t0) * 1000)
        out.setdefault(str(r[1]), []).append([x, _num(r[value_index])])
    return out


def collect(conn: psycopg.Connection, lang: Lang = "fr") -> dict[str, Any]:
    """Everything the report shows, as JSON-able data and (columns, rows) tables."""
    t = labels(lang)
    s = _Store(conn)
    now = s.now
    far_past = datetime(2000, 1, 1, tzinfo=UTC)
    data: dict[str, Any] = {"generated_at": now.isoformat(timespec="seconds"), "charts": {}}
    charts: dict[str, Any] = data["charts"]

    data["sites"] = s.panel(territory.MAP_SQL, far_past, now + timedelta(days=2))
    _, quality = s.panel(territory.quality_sql(t, lang), far_past, now + timedelta(days=2))
    data["quality"] = [str(r[2]) for r in quality]
    data["forecasts"] = []
    for c in _forecast_charts(s, t):
        charts[c["id"]] = c
        data["forecasts"].append({"id": c["id"], "title": c["title"],
                                  "subtitle": c["subtitle"]})

    data["versions"] = s.panel(models_pipeline.VERSIONS_SQL, far_past, now)
    data["choices"] = s.panel(models_pipeline.CHOICE_SQL, far_past, now)
    _, acc = s.panel(models_pipeline.ACCURACY_SQL, far_past, now + timedelta(days=2))
    by_kind: dict[str, dict[str, list[Any]]] = {}
    for metric, pts in _series_by_metric(acc).items():
        by_kind.setdefault(metric.split(" · ")[0], {})[metric] = pts
    data["accuracy"] = []
    for i, (kind, series) in enumerate(sorted(by_kind.items())):
        cid = f"acc-{i}"
        charts[cid] = {"type": "line", "unit": "nMAE %", "series": [
            {"name": k.split(" · ", 1)[1], "points": v, "dash": k.endswith("live")}
            for k, v in sorted(series.items())], "band": None}
        data["accuracy"].append({"id": cid, "title": kind})
    data["freshness"] = s.panel(models_pipeline.FRESHNESS_SQL, far_past, now)
    week = now - timedelta(days=7)
    _, dur = s.panel(models_pipeline.DURATIONS_SQL, week, now)
    charts["durations"] = {"type": "line", "unit": "s", "band": None, "series": [
        {"name": k, "points": v} for k, v in sorted(_series_by_metric(dur).items())]}
    data["failures"] = s.panel(models_pipeline.FAILURES_SQL, week, now)

    per_stage = s.panel(frugality.PER_STAGE_MODEL_SQL, far_past, now)
    data["per_stage"] = per_stage
    cols, rows = per_stage
    ci = {c: i for i, c in enumerate(cols)}
    stages: dict[str, list[float]] = {}
    methods: dict[str, set[str]] = {}
    for r in rows:
        acc_s = stages.setdefault(r[ci["stage"]], [0.0, 0.0])
        acc_s[0] += _num(r[ci["energy_kwh"]]) or 0.0
        acc_s[1] += _num(r[ci["kgco2e"]]) or 0.0
        methods.setdefault(r[ci["stage"]], set()).add(str(r[ci["measurement_method"]]))
    names = sorted(stages)
    charts["kwh-stage"] = {"type": "bar", "unit": "kWh", "categories": names, "series": [
        {"name": "kWh", "values": [stages[n][0] for n in names]}]}
    charts["co2-stage"] = {"type": "bar", "unit": "kgCO2e", "categories": names, "series": [
        {"name": "kgCO2e", "values": [stages[n][1] for n in names], "color": "#8c564b"}]}
    data["methods"] = s.panel(frugality.METHODS_SQL, far_past, now)
    data["stage_methods"] = {k: sorted(v) for k, v in methods.items()}
    bal = s.panel(frugality.BALANCE_TABLE_SQL, far_past, now)
    data["balances"] = bal
    bcols, brows = bal
    bi = {c: i for i, c in enumerate(bcols)}
    cats = [f"{r[bi['kind']]} · {r[bi['model']]}" for r in brows]
    charts["avoided"] = {"type": "bar", "unit": "kgCO2e", "categories": cats, "series": [
        {"name": t["fr.spent"], "color": "#d62728",
         "values": [_num(r[bi["compute_kgco2e"]]) for r in brows]},
        {"name": t["fr.avoided_col"], "color": "#2ca02c",
         "values": [_num(r[bi["avoided_kgco2e"]]) for r in brows]},
        {"name": t["fr.ml_added_col"], "color": "#1f77b4",
         "values": [_num(r[bi["ml_added_avoided_kgco2e"]]) for r in brows]}]}
    acc_energy = s.panel(frugality.ACC_ENERGY_SQL, far_past, now)
    data["acc_energy"] = acc_energy
    acols, arows = acc_energy
    ai = {c: i for i, c in enumerate(acols)}
    charts["acc-energy"] = {"type": "scatter", "logX": True, "xUnit": "kWh", "yUnit": "nMAE %",
                            "points": [{"x": _num(r[ai["train_energy_kwh"]]),
                                        "y": _num(r[ai["nmae_pct"]]),
                                        "label": str(r[ai["model"]]),
                                        "group": str(r[ai["model"]]).split(" · ")[0],
                                        "note": str(r[ai["measurement_method"]])}
                                       for r in arows]}
    return data


# ---------------------------------------------------------------- HTML

def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float | Decimal):
        f = float(v)
        return f"{f:.3g}" if abs(f) < 0.01 and f != 0 else f"{f:,.2f}".rstrip("0").rstrip(".")
    text = str(v)
    return html.escape(text if len(text) <= 160 else text[:157] + "…")


def _table(rows: Rows, drop: tuple[str, ...] = ()) -> str:
    cols, data = rows
    keep = [i for i, c in enumerate(cols) if c not in drop]
    head = "".join(f"<th>{html.escape(cols[i])}</th>" for i in keep)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r[i])}</td>" for i in keep) + "</tr>"
                   for r in data)
    return f'<div class="table-wrap"><table><tr>{head}</tr>{body}</table></div>'


def _chart(cid: str, title: str, note: str = "") -> str:
    sub = f'<div class="note">{html.escape(note)}</div>' if note else ""
    return (f'<div class="card"><h3>{html.escape(title)}</h3>{sub}'
            f'<div class="chart" id="{cid}"></div></div>')


def render_html(data: dict[str, Any], lang: Lang = "fr") -> str:
    t = labels(lang)
    asset = resources.files("ecodemo.dashboards") / "assets"
    js = (asset / "report.js").read_text(encoding="utf-8")
    css = (asset / "report.css").read_text(encoding="utf-8")
    payload = json.dumps({"charts": data["charts"]}, separators=(",", ":"),
                         allow_nan=False).replace("</", "<\\/")
    scols, srows = data["sites"]
    si = {c: i for i, c in enumerate(scols)}
    cards = "".join(
        f'<div class="card"><div class="muted">{html.escape(str(r[si["name"]]))}</div>'
        f'<div class="big">{_cell(r[si["last_value"]])} {html.escape(str(r[si["unit"]]))}</div>'
        f'<div class="note">{_cell(r[si["last_ts"]])} UTC</div></div>' for r in srows)
    quality = "".join(f'<p class="sentence">{html.escape(q)}.</p>' for q in data["quality"])
    forecasts = "".join(_chart(f["id"], f["title"], f["subtitle"]) for f in data["forecasts"])
    accuracy = "".join(_chart(a["id"], a["title"], t["models.accuracy.desc"])
                       for a in data["accuracy"])
    stage_methods = "; ".join(f"{k}: {', '.join(v)}" for k, v in data["stage_methods"].items())
    method_note = ("Méthode de mesure par étape — " if lang == "fr"
                   else "Measurement method per stage — ") + stage_methods
    hook = ("window.__errors=[];function __rep(m){window.__errors.push(String(m));"
            "var e=document.getElementById('report-errors');if(e){e.textContent="
            "window.__errors.join('\\n');}}window.addEventListener('error',function(e)"
            "{__rep(e.message);});var __ce=console.error;console.error=function(){"
            "__rep(Array.prototype.join.call(arguments,' '));__ce.apply(console,arguments);};")
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ecodemo – {html.escape(t['territory.title'].split('– ')[-1])}</title>
<script>{hook}</script>
<style>{css}</style></head>
<body>
<header><h1>ecodemo</h1>
<div class="muted">{html.escape(data['generated_at'])} ·
<nav><a href="#territory">{html.escape(t['territory.title'].split('– ')[-1])}</a>
<a href="#models">{html.escape(t['models.title'].split('– ')[-1])}</a>
<a href="#frugality">{html.escape(t['frugality.title'].split('– ')[-1])}</a></nav></div>
<pre id="report-errors"></pre></header>
<main>
<section id="territory"><h2>{html.escape(t['territory.title'])}</h2>
<p>{html.escape(t['territory.intro'])}</p>
<h3>{html.escape(t['now.title'])}</h3><div class="cards">{cards}</div>
<h3>{html.escape(t['quality.title'])}</h3>{quality}
<p class="note">{html.escape(t['quality.desc'])}</p>
<h3>{html.escape(t['forecast.title'].split(':')[0])}</h3>
<p class="note">{html.escape(t['forecast.desc'])}</p>
<div class="grid">{forecasts}</div></section>
<section id="models"><h2>{html.escape(t['models.title'])}</h2>
<h3>{html.escape(t['models.choice'])}</h3>{_table(data['choices'], ('candidates',))}
<h3>{html.escape(t['models.versions'])}</h3>{_table(data['versions'], ('metrics', 'model_id'))}
<h3>{html.escape(t['models.accuracy'])}</h3><div class="grid">{accuracy}</div>
<h3>{html.escape(t['models.freshness'])}</h3>{_table(data['freshness'])}
<div class="grid">{_chart('durations', t['models.durations'])}
<div class="card"><h3>{html.escape(t['models.failures'])}</h3>{_table(data['failures'])}</div>
</div></section>
<section id="frugality"><h2>{html.escape(t['frugality.title'])}</h2>
<p>{html.escape(t['frugality.intro'].replace('**', ''))}</p>
<div class="grid">{_chart('kwh-stage', t['fr.kwh_stage'], method_note)}
{_chart('co2-stage', t['fr.co2_stage'], method_note)}</div>
<h3>{html.escape(t['fr.methods'])}</h3>{_table(data['methods'])}
<h3>{html.escape(t['fr.table'])}</h3>{_table(data['per_stage'])}
<div class="grid">{_chart('avoided', t['fr.avoided'])}
{_chart('acc-energy', t['fr.acc_energy'], 'x: kWh (log), y: nMAE %')}</div>
<h3>{html.escape(t['fr.balance'])}</h3>{_table(data['balances'], ('assumptions',))}
<h3>{html.escape(t['fr.acc_energy_table'])}</h3>{_table(data['acc_energy'])}
</section></main>
<footer class="muted">ecodemo · Grafana: dashboards/ecodemo-*.json</footer>
<script type="application/json" id="ecodemo-data">{payload}</script>
<script>{js}</script>
</body></html>
"""


def write_html_report(settings: Settings, path: Path, lang: Lang = "fr") -> Path:
    """Read the store and write the self-contained report to ``path``; returns ``path``."""
    with connect(settings) as conn:
        data = collect(conn, lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data, lang), encoding="utf-8")
    return path
