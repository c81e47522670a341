"""Detail tables for specialists: headers in words, figures in human units, methods as
references to one legend, quality flags as a sentence ('5 pics, 2 trous'), never raw JSON.

A cell is formatted from its column's name (units are in the names: ``_kwh``, ``_kgco2e``,
``_hours``...). A column without a header in the catalogue (``col.<name>``) is still shown,
marked ``untranslated`` so the report's test catches it.
"""

from __future__ import annotations

import html
import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ecodemo.dashboards import humanize as hz
from ecodemo.dashboards.common import KIND_NAMES
from ecodemo.dashboards.labels import Lang, labels

Rows = tuple[list[str], list[tuple[Any, ...]]]
MAX_TEXT = 120
_FLAG_KEYS = ("spike", "flat_line", "impossible", "above_capacity", "negative_night",
              "unit_suspect", "unit_converted", "dst_repeated", "dst_quarantined",
              "unit_quarantined", "duplicates_quarantined")


class MethodLegend:
    """Numbers each distinct measurement method once; cells show ``[n]``."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    def ref(self, method: str) -> str:
        if method not in self.methods:
            self.methods.append(method)
        n = self.methods.index(method) + 1
        return f'<a class="ref" href="#method-{n}">[{n}]</a>'

    def render(self, lang: Lang) -> str:
        t = labels(lang)
        # the words, then the method as stored (an identifier the pipeline wrote) as code
        items = "".join(
            f'<li id="method-{i}">{html.escape(rung_words(describe_method(m, lang), t))}'
            + ("" if describe_method(m, lang) == m else
               f' <span class="muted">{html.escape(t["methods.stored"])}</span>'
               f" <code>{html.escape(m)}</code>")
            + "</li>" for i, m in enumerate(self.methods, start=1))
        return (f'<div class="legend-methods"><h3>{html.escape(t["methods.title"])}</h3>'
                f'<ol>{items}</ol></div>')


_RUNG_ID = re.compile(r"\b(persistence|seasonal_naive|climatology|lgbm_small|lgbm_large)\b")
_TDP = re.compile(r"TDP \((\d+(?:\.\d+)?) W\)")


def rung_words(text: str, t: dict[str, str]) -> str:
    """Ladder rung ids in a text ('lgbm_large v2') as their short words ('LightGBM grand v2')."""
    return _RUNG_ID.sub(lambda m: t.get(f"rung.short.{m.group(0)}", m.group(0)), text)


def describe_method(method: str, lang: Lang) -> str:
    """A measurement method in plain words (the stored text kept for anything unknown)."""
    t = labels(lang)
    low = method.lower()
    if low.startswith("estimated"):
        tdp = _TDP.search(method)
        return t["method.estimated"].format(tdp=tdp.group(1) if tdp else "?")
    if low.startswith("measured"):
        return t["method.measured"]
    if low.startswith("not measured") or low.startswith("incomplete"):
        return t["method.not_measured"]
    return method


_CODECARBON_MIX = re.compile(r"^CodeCarbon offline: annual average of the country's "
                             r"electricity mix \((\w+)\)$")


def intensity_source(text: str, t: dict[str, str]) -> str:
    """Where a run's carbon intensity came from, in words (each of a ', '-joined list)."""
    parts = []
    for part in text.split(", "):
        m = _CODECARBON_MIX.match(part)
        parts.append(t["intensity.codecarbon"].format(country=m.group(1)) if m else part)
    return ", ".join(parts)


def quality_summary(flags: Any, n_gaps: Any, lang: Lang) -> str:
    """'5 pics, 2 trous' from the quality check's counters."""
    t = labels(lang)
    data = flags if isinstance(flags, dict) else json.loads(flags) if flags else {}
    parts = []
    for key in _FLAG_KEYS:
        n = data.get(key) or 0
        if n:
            parts.append(t["flag.count"].format(n=hz.number(n, lang),
                                                what=t.get(f"flag.{key}", key)))
    if n_gaps:
        parts.append(t["flag.count"].format(n=hz.number(n_gaps, lang), what=t["flag.gaps"]))
    return ", ".join(parts) or t["flag.none"]


def header(col: str, t: dict[str, str]) -> str:
    key = f"col.{col}"
    if key in t:
        return f"<th>{html.escape(t[key])}</th>"
    return f'<th class="untranslated">{html.escape(col.replace("_", " ").capitalize())}</th>'


def cell(col: str, v: Any, lang: Lang, legend: MethodLegend, row: dict[str, Any]) -> str:
    t = labels(lang)
    if col == "flags":
        return html.escape(quality_summary(v, row.get("n_gaps"), lang))
    if v is None:
        return "–"
    if col.endswith("_range") and isinstance(v, list) and len(v) == 2:
        return html.escape(range_cell(col, v, lang, row.get(col[:-6])))
    if col == "energy_effect":
        return html.escape(t.get(f"effect.{v}", str(v)))
    if col in ("measurement_method", "method"):
        return legend.ref(str(v))
    if col == "kind":
        names = KIND_NAMES.get(str(v))
        return html.escape(names[0 if lang == "fr" else 1] if names else str(v))
    if col in ("stage", "status", "tracking_mode"):
        return html.escape(t.get(f"{col}.{v}", str(v)))
    if col == "unit":
        return html.escape(hz.unit(str(v), lang))
    if col == "intensity_source":
        return html.escape(intensity_source(str(v), t))
    if col == "full_name":   # a proper name, in the language its source wrote it
        return f'<span translate="no">{html.escape(str(v))}</span>'
    if isinstance(v, datetime):
        return html.escape(hz.when(v, lang))
    if isinstance(v, date):
        return html.escape(hz.when(datetime(v.year, v.month, v.day), lang, with_time=False))
    if isinstance(v, int | float | Decimal) and not isinstance(v, bool):
        return html.escape(number_cell(col, float(v), lang))
    text = rung_words(str(v), t)
    if len(text) <= MAX_TEXT:
        return html.escape(text)
    return f'<span title="{html.escape(text)}">{html.escape(text[:MAX_TEXT - 1])}…</span>'


def range_cell(col: str, pair: list[Any], lang: Lang, central: Any = None) -> str:
    """A [low, high] pair in the unit its column's name says (an energy in the unit of its
    central value, the column before it: '1 000 J' then '600 à 6 100 J')."""
    lo, hi = (None if x is None else float(x) for x in pair)
    if col.endswith("_kwh_range"):
        like = float(central) if isinstance(central, int | float | Decimal) else None
        return hz.energy_range(lo, hi, lang, like=like)
    if col.endswith("_kgco2e_range"):
        return hz.co2_range(lo, hi, lang)
    if lo is None and hi is None:
        return "–"
    # a payback's missing end is one that never comes (the service never pays back there)
    missing = labels(lang)["range.never"] if col == "payback_hours_range" else "–"
    ends = [missing if x is None else number_cell(col[:-6], x, lang) for x in (lo, hi)]
    return f"{ends[0]}{labels(lang)['range.to']}{ends[1]}"


def number_cell(col: str, x: float, lang: Lang) -> str:
    if col.endswith("g_per_kwh"):
        return f"{hz.number(x, lang)}\u00a0g\u00a0{hz.CO2}/kWh"
    if col.endswith("_kwh"):
        return hz.energy(x, lang)
    if col.endswith(("kgco2e", "emissions_kg")):
        return hz.co2(x, lang)
    if col.endswith("_hours"):
        return hz.duration_h(x, lang)
    if col.endswith(("_s", "_seconds")):
        return hz.duration_h(x / 3600, lang)
    if col.endswith("_pct"):
        return hz.percent(x / 100, lang)
    if col == "tolerance":
        return hz.percent(x, lang)
    if x.is_integer():   # a count keeps every digit (8 966 readings, not 8 970)
        return hz.number(x, lang, sig=max(3, len(str(int(abs(x))))))
    return hz.number(x, lang, sig=3)


def table(rows: Rows, lang: Lang, legend: MethodLegend, drop: tuple[str, ...] = (),
          caption: str = "") -> str:
    t = labels(lang)
    cols, data = rows
    keep = [i for i, c in enumerate(cols) if c not in drop]
    head = "".join(header(cols[i], t) for i in keep)
    body = []
    for r in data:
        row = dict(zip(cols, r, strict=True))
        body.append("<tr>" + "".join(f"<td>{cell(cols[i], r[i], lang, legend, row)}</td>"
                                     for i in keep) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<div class="table-wrap" tabindex="0"><table>{cap}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')
