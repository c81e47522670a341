"""The report's page: verdict, territory, models, then collapsible detail tables.

``for_print`` opens every detail table (a printed page cannot be clicked) for the PDF.
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from typing import Any

from ecodemo.dashboards import humanize as hz
from ecodemo.dashboards import verdict
from ecodemo.dashboards.common import KIND_NAMES
from ecodemo.dashboards.evidence import balance_method, practice_evidence
from ecodemo.dashboards.labels import Lang, labels
from ecodemo.dashboards.report_tables import MethodLegend, rung_words, table


def _e(s: Any) -> str:
    return html.escape(str(s))


_IDENT = re.compile(r"`([^`]+)`|\b([A-Za-z]\w*_\w+)\b")


def _prose(text: str) -> str:
    """Free text written by the pipeline (evidence, methods): escaped, with the identifiers it
    names (tables, settings, `commands`) marked as code rather than read as words."""
    return _IDENT.sub(lambda m: f"<code>{m.group(1) or m.group(2)}</code>", html.escape(text))


def _kind(kind: str, lang: Lang) -> str:
    names = KIND_NAMES.get(kind)
    return names[0 if lang == "fr" else 1].capitalize() if names else kind


def _chart(cid: str, title: str, note: str = "", full: str = "") -> str:
    hover = f' title="{_e(full)}"' if full else ""
    sub = f'<p class="note">{_e(note)}</p>' if note else ""
    return (f'<figure class="card"><figcaption><h4{hover}>{_e(title)}</h4>{sub}</figcaption>'
            f'<div class="chart" id="{cid}" role="img" aria-label="{_e(title)}"></div></figure>')


def _details(title: str, body: str, for_print: bool) -> str:
    return (f'<details{" open" if for_print else ""}><summary>{_e(title)}</summary>'
            f"{body}</details>")


def _now_cards(data: dict[str, Any], lang: Lang) -> str:
    cols, rows = data["sites"]
    si = {c: i for i, c in enumerate(cols)}
    out = []
    for r in rows:
        full = str(r[si["full_name"]])
        value = r[si["last_value"]]
        val = "–" if value is None else hz.number(float(value), lang)
        unit = hz.unit(r[si["unit"]], lang)
        out.append(
            f'<div class="card"><div class="muted" title="{_e(full)}">'
            f'{_e(r[si["name"]])}</div>'
            f'<div class="big">{_e(val)}\u00a0<span class="unit">{_e(unit)}</span></div>'
            f'<div class="note">{_e(hz.when(r[si["last_ts"]], lang))}</div></div>')
    return "".join(out)


def _site_units(site_table: tuple[list[str], list[Any]], lang: Lang
                ) -> tuple[list[str], list[Any]]:
    cols, rows = site_table
    u = cols.index("unit")
    return cols, [(*r[:u], hz.unit(r[u], lang), *r[u + 1:]) for r in rows]


def _practices(practices: list[dict[str, Any]], lang: Lang) -> str:
    """The AFNOR SPEC 2314 practices the store shows, each with its evidence."""
    t = labels(lang)
    if not practices:
        return ""
    answer = {True: "practices.yes", False: "practices.no", None: "practices.unknown"}
    rows = "".join(
        f"<tr><td>{_e(t.get('practice.' + str(p['practice']), p['practice']))}</td>"
        f"<td>{_e(t[answer.get(p.get('applied'), 'practices.unknown')])}</td>"
        f"<td>{_prose(practice_evidence(p, lang))}</td></tr>" for p in practices)
    head = "".join(f"<th>{_e(t['practices.col.' + c])}</th>"
                   for c in ("practice", "applied", "evidence"))
    return (f'<div class="table-wrap" tabindex="0"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def _balance_methods(rows: tuple[list[str], list[Any]], lang: Lang) -> str:
    """How each balance was computed, in words from its stored assumptions (the English
    ``method`` text stays in the exports)."""
    t = labels(lang)
    cols, data = rows
    ki, mo, ai = cols.index("kind"), cols.index("model"), cols.index("assumptions")
    items = "".join(f"<li><b>{_e(_kind(r[ki], lang))}, {_e(rung_words(str(r[mo]), t))}</b>"
                    f"{_e(t['colon'])}{_prose(balance_method(r[ai], lang))}</li>"
                    for r in data if r[ai])
    return (f'<h4>{_e(t["balance.methods"])}</h4><ul class="balance-methods">{items}</ul>'
            if items else "")


def render_html(data: dict[str, Any], lang: Lang = "fr", *, for_print: bool = False) -> str:
    t = labels(lang)
    asset = resources.files("ecodemo.dashboards") / "assets"
    js = (asset / "report.js").read_text(encoding="utf-8")
    css = (asset / "report.css").read_text(encoding="utf-8")
    payload = json.dumps({"lang": lang, "charts": data["charts"],
                          "strings": {k: t[k] for k in ("chart.nodata",)}},
                         separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    legend = MethodLegend()
    # the legend's first entry is the measurement method behind most compute figures (the
    # verdict's cost refers to it); the methods table is sorted by runs, most first
    mcols, mrows = data["methods"]
    ref = legend.ref(str(mrows[0][mcols.index("measurement_method")])) if mrows else ""
    cards_html = verdict.render_section(data["cards"], lang, ref)

    quality = "".join(f'<p class="sentence">{_e(q)}.</p>' for q in data["quality"])
    forecasts = "".join(_chart(f["id"], f["title"], f["subtitle"], f["full"])
                        for f in data["forecasts"])
    accuracy = "".join(_chart(a["id"], _kind(a["kind"], lang)) for a in data["accuracy"])
    frontier = "".join(_chart(a["id"], _kind(a["kind"], lang)) for a in data["frontier"])

    details = "".join([
        _details(t["practices.title"], _practices(data.get("practices", []), lang), for_print),
        _details(t["sites.title"], table(_site_units(data["site_table"], lang), lang,
                                         legend), for_print),
        _details(t["models.choice"], table(data["choices"], lang, legend,
                                           ("candidates", "model_id", "reason")), for_print),
        _details(t["models.versions"], table(data["versions"], lang, legend,
                                             ("metrics", "model_id")), for_print),
        _details(t["models.freshness"], table(data["freshness"], lang, legend), for_print),
        _details(t["models.failures"], table(data["failures"], lang, legend), for_print),
        _details(t["fr.table"], table(data["per_stage"], lang, legend), for_print),
        _details(t["fr.methods"], table(data["methods"], lang, legend), for_print),
        _details(t["fr.balance"], table(data["balances"], lang, legend,
                                        ("assumptions", "method", "breakeven"))
                 + _balance_methods(data["balances"], lang), for_print),
    ])
    when = hz.when(data["generated_at"], lang)
    title = t["report.title"]
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<script>{_ERROR_HOOK}</script>
<style>{css}</style></head>
<body>
<header><h1>{_e(title)}</h1>
<p class="muted">{_e(t["report.generated"].format(when=when))}</p>
<nav aria-label="{_e(t['nav.label'])}"><a href="#verdict">{_e(t['nav.verdict'])}</a>
<a href="#territory">{_e(t['nav.territory'])}</a><a href="#models">{_e(t['nav.models'])}</a>
<a href="#details">{_e(t['nav.details'])}</a></nav>
<pre id="report-errors"></pre></header>
<main>
{cards_html}
<section id="territory"><h2>{_e(t['territory.title'])}</h2>
<p>{_e(t['territory.intro.report'])}</p>
<h3>{_e(t['now.title'])}</h3><div class="cards">{_now_cards(data, lang)}</div>
<h3>{_e(t['quality.title'])}</h3>{quality}
<p class="note">{_e(t['quality.desc'])}</p>
<h3>{_e(t['forecast.title.report'])}</h3>
<p class="note">{_e(t['forecast.desc'])}</p>
<div class="grid">{forecasts}</div></section>
<section id="models"><h2>{_e(t['models.title.report'])}</h2>
<h3>{_e(t['acc.title'])}</h3><p class="note">{_e(t['acc.desc'])}</p>
<div class="grid">{accuracy}</div>
<h3>{_e(t['frontier.title'])}</h3><p class="note">{_e(t['frontier.desc'])}</p>
<div class="grid">{frontier}</div>
<div class="grid narrow">{_chart('energy-stage', t['fr.kwh_stage.report'], t['fr.stage.note'])}
</div>
</section>
<section id="details"><h2>{_e(t['details.title'])}</h2><p>{_e(t['details.intro'])}</p>
{legend.render(lang)}
{details}
</section></main>
<footer class="muted">{_e(t['footer'])}</footer>
<script type="application/json" id="ecodemo-data">{payload}</script>
<script>{js}</script>
</body></html>
"""


# Errors in the page's own script are shown on the page and read by the browser test.
_ERROR_HOOK = (
    "window.__errors=[];function __rep(m){window.__errors.push(String(m));"
    "var e=document.getElementById('report-errors');if(e){e.textContent="
    "window.__errors.join('\\n');}}window.addEventListener('error',function(e)"
    "{__rep(e.message);});var __ce=console.error;console.error=function(){"
    "__rep(Array.prototype.join.call(arguments,' '));__ce.apply(console,arguments);};")
