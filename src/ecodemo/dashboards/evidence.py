"""The report's words for what the pipeline records in English: the frugal practices' evidence
and how each balance was computed.

The store keeps the English text (the auditor's record, in the JSON/CSV exports); the report
words the same facts from the catalogue (``evidence.<key>``, ``bm.<key>``), from structured
fields: the practices' ``evidence_key``/``evidence_args``, and the balance's assumptions
(error reduction source and period, counterfactual, run counts). The reductions' notes are
free text written by ``ecodemo.energy``: each known pattern has its words here; a note of a new
shape is shown as written, and the report's visible-text test fails on its English, so it gets
its words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ecodemo.dashboards import humanize as hz
from ecodemo.dashboards.common import KIND_NAMES
from ecodemo.dashboards.labels import Lang, labels


def _kind(kind: str, lang: Lang) -> str:
    names = KIND_NAMES.get(kind)
    return names[0 if lang == "fr" else 1] if names else kind


def _rung(name: str, t: dict[str, str]) -> str:
    return t.get(f"rung.short.{name}", name)


def _count(n: int, lang: Lang) -> str:
    """A count with every digit (a figure is rounded, a count is not)."""
    return hz.number(n, lang, sig=max(3, len(str(abs(n)))))


def _join(items: list[str], t: dict[str, str]) -> str:
    return t["evidence.list_sep"].join(items)


def practice_evidence(practice: dict[str, Any], lang: Lang) -> str:
    """A practice's evidence in the report's language (its English text when it has no key)."""
    t = labels(lang)
    key = practice.get("evidence_key")
    if not key or f"evidence.{key}" not in t:
        return str(practice.get("evidence") or "")
    args = dict(practice.get("evidence_args") or {})
    for name, value in list(args.items()):
        if name == "compared":
            args[name] = t["evidence.compared_sep"].join(
                t["evidence.compared_item"].format(
                    kind=_kind(k, lang), names=_join([_rung(n, t) for n in names], t) or "?",
                    chosen=_rung(chosen, t)) for k, names, chosen in value)
        elif name == "tolerances":
            args[name] = _join([hz.percent(x, lang) for x in value], t)
        elif name == "methods":
            args[name] = _join([t.get(f"method.kind.{m}", m) for m in value], t) or \
                t["method.kind.none"]
        elif name == "when":
            args[name] = hz.when(value, lang)
        elif isinstance(value, int) and not isinstance(value, bool):   # a count: every digit
            args[name] = _count(value, lang)
    return t[f"evidence.{key}"].format(**args)


def _day(iso: str | None, lang: Lang) -> str:
    return hz.when(iso, lang, with_time=False) if iso else "?"


# (pattern of a note ecodemo.energy writes, its catalogue key, its arguments from the match);
# a None key drops the note because the sentence already says it (source and period)
_Args = Callable[[re.Match[str], Lang], dict[str, str]]
_NOTES: list[tuple[re.Pattern[str], str | None, _Args]] = [
    (re.compile(r"^(backtest|live): "), None, lambda m, lang: {}),
    (re.compile(r"^sensor (\S+) left out: unit (.+?) is not convertible to (.+)$"),
     "bm.left_out", lambda m, lang: {"sensor": m.group(1), "unit": hz.unit(m.group(2), lang),
                                     "error_unit": hz.unit(m.group(3), lang)}),
    (re.compile(r"^sensor (\S+) left out: unit (.+?) is not convertible$"),
     "bm.left_out_any", lambda m, lang: {"sensor": m.group(1), "unit": hz.unit(m.group(2), lang)}),
    (re.compile(r"^backtest gives only the kind's aggregate: .* (\d+) sensor\(s\)$"),
     "bm.aggregate", lambda m, lang: {"n": m.group(1)}),
    (re.compile(r"^sensor (\S+): no backtest of the model$"),
     "bm.no_backtest", lambda m, lang: {"sensor": m.group(1)}),
    (re.compile(r"^sensor (\S+): the series (\S+) has no value"),
     "bm.series_empty", lambda m, lang: {"sensor": m.group(1), "series": m.group(2)}),
    (re.compile(r"falling back$"), "bm.fallback", lambda m, lang: {}),
    (re.compile(r"^error reduction interval: (\d+)% percentile interval of a moving-block "
                r"bootstrap over the (\d+) test origins \(blocks of (\d+) day\(s\), (\d+) "
                r"resamples, seed (\d+)"),
     "bm.interval", lambda m, lang: {"level": m.group(1), "origins": m.group(2),
                                     "block": m.group(3), "resamples": m.group(4),
                                     "seed": m.group(5)}),
    (re.compile(r"^error reduction interval: (\d+)% percentile interval of a moving-block "
                r"bootstrap over the (\d+) issue days \(blocks of (\d+) day\(s\), (\d+) "
                r"resamples, seed (\d+)"),
     "bm.interval_live", lambda m, lang: {"level": m.group(1), "origins": m.group(2),
                                          "block": m.group(3), "resamples": m.group(4),
                                          "seed": m.group(5)}),
    (re.compile(r"^error reduction is a point: the live forecasts were issued on one day"),
     "bm.point_one_issue_day", lambda m, lang: {}),
    (re.compile(r"^error reduction is a point: sensor (\S+) has no errors per test origin"),
     "bm.point_no_origins", lambda m, lang: {"sensor": m.group(1)}),
    (re.compile(r"^error reduction is a point: the errors per origin give"),
     "bm.point_mismatch", lambda m, lang: {}),
]


def note_words(note: str, lang: Lang) -> str | None:
    """One note of an error reduction in words (None when the sentence already says it)."""
    t = labels(lang)
    for pattern, key, args in _NOTES:
        m = pattern.search(note)
        if m:
            return None if key is None else t[key].format(**args(m, lang))
    return note


def balance_method(assumptions: dict[str, Any] | str | None, lang: Lang) -> str:
    """How a balance was computed, in the report's language, from its stored assumptions."""
    t = labels(lang)
    a = json.loads(assumptions) if isinstance(assumptions, str) else (assumptions or {})
    red = a.get("error_reduction_source") or {}
    cf = a.get("counterfactual") or {}
    period = red.get("evaluation_period") or [None, None]
    source = red.get("source") or cf.get("source") or "none"
    parts = []
    unmeasured = int(a.get("unmeasured_runs") or 0)
    if unmeasured:
        parts.append(t["bm.incomplete"].format(n=_count(unmeasured, lang)))
    parts.append(t.get(f"bm.source.{source}", t["bm.source.none"]).format(
        start=_day(period[0], lang), end=_day(period[1], lang),
        cf=_rung(str(cf.get("name") or "?"), t)))
    notes: list[str] = []
    for note in [*(red.get("notes") or []), *(cf.get("notes") or [])]:
        words = note_words(str(note), lang)
        if words and words not in notes:
            notes.append(words)
    if notes:
        parts.append(t["bm.notes"].format(notes=t["evidence.compared_sep"].join(notes)))
    comps = (a.get("components") or {}).values()
    parts.append(t["bm.compute"].format(
        runs=_count(sum(int(c.get("n_runs") or 0) for c in comps), lang),
        grid=_count(sum(int(c.get("n_grid_intensity") or 0) for c in comps), lang)))
    emb = a.get("embodied") or {}
    if isinstance(emb, dict) and emb.get("kgco2e") is not None:
        lo, hi = (emb.get("kgco2e_range") or [None, None])[:2]
        parts.append(t["bm.embodied"].format(
            co2=hz.co2(emb["kgco2e"], lang), range=hz.co2_range(lo, hi, lang),
            hours=hz.duration_h(emb.get("run_hours"), lang),
            rate=hz.co2(emb.get("kgco2e_per_machine_hour"), lang),
            manuf=hz.co2(emb.get("manufacturing_kgco2e"), lang),
            life=hz.number(emb.get("lifetime_years"), lang)))
    return " ".join(parts)
