"""The verdict: one card per forecast service, in plain words, before any table.

Each card answers, from the store: what is forecast and for whom; how much better than the
forecast it replaces (the counterfactual); what the computing cost to build and to run; what
the forecasts help avoid (with the range when the balance gives one); the net balance and
payback; and the one assumption that decides it (its break-even value).

Figures the balance may or may not hold yet (ranges, the named counterfactual, saved or
shifted energy, selection cost) are read when present and left out when absent: a card never
shows a range it was not given, and never fills a missing figure with 0.
"""

from __future__ import annotations

import html
import json
from typing import Any

import psycopg

from ecodemo.dashboards import humanize as hz
from ecodemo.dashboards.labels import Lang, labels
from ecodemo.dashboards.report_tables import rung_words

NO_AI = ("persistence", "seasonal_naive", "climatology")

_BALANCES = """
    SELECT DISTINCT ON (b.kind) b.*, m.name AS model_name
    FROM balances b LEFT JOIN models m ON m.model_id = b.model_id
    ORDER BY b.kind, b.evaluated_at DESC, (m.status = 'promoted') DESC NULLS LAST
"""

_CHOICES = """
    SELECT DISTINCT ON (kind) kind, chosen_name, candidates FROM model_choices
    ORDER BY kind, decided_at DESC
"""

# where the weather of the latest forecast of each kind came from (the predict run's details)
_WEATHER = """
    SELECT DISTINCT ON (sensor_kind) sensor_kind, details->'weather'->>'provenance'
    FROM compute_runs WHERE stage = 'predict' AND details ? 'weather'
    ORDER BY sensor_kind, started_at DESC
"""

_SITES = """
    SELECT s.kind, s.name, s.attributes->>'short_name' FROM sites s
    WHERE EXISTS (SELECT 1 FROM sensors se WHERE se.site_id = s.site_id)
    ORDER BY s.kind, s.site_id
"""


def _json(v: Any) -> dict[str, Any]:
    if isinstance(v, dict):
        return v
    if isinstance(v, str) and v:
        loaded = json.loads(v)
        return loaded if isinstance(loaded, dict) else {}
    return {}


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def _pick(row: dict[str, Any], *names: str) -> Any:
    """The first of ``names`` found on the balance row, in its assumptions, or in the
    assumptions' ``ranges``/``benefit``/``compute`` groups (where the balance may keep them)."""
    a = row["assumptions"]
    for src in (row, a, _json(a.get("ranges")), _json(a.get("benefit")),
                _json(a.get("compute"))):
        for n in names:
            if src.get(n) is not None:
                return src[n]
    return None


def _range(v: Any) -> tuple[float, float] | None:
    if isinstance(v, list | tuple) and len(v) == 2 and all(x is not None for x in v):
        lo, hi = float(v[0]), float(v[1])
        return (min(lo, hi), max(lo, hi))
    return None


def collect_cards(conn: psycopg.Connection, short_name: Any) -> list[dict[str, Any]]:
    """One dict per kind with a balance: the figures a verdict card shows (raw units)."""
    cur = conn.execute(_BALANCES)
    cols = [d.name for d in cur.description or []]
    balances = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    # the ladder's own backtest figures per rung: what it chose on
    rungs: dict[str, dict[str, float]] = {}
    chosen: dict[str, str] = {}
    day_ahead: dict[str, float] = {}
    for kind, name, candidates in conn.execute(_CHOICES).fetchall():
        chosen[kind] = name
        for cand in candidates if isinstance(candidates, list) else []:
            if cand.get("nmae") is not None:
                rungs.setdefault(kind, {})[cand["name"]] = float(cand["nmae"])
            ahead = _json(cand.get("day_ahead")).get("skill_vs_seasonal_naive")
            if cand.get("name") == name and ahead is not None:
                day_ahead[kind] = float(ahead)
    weather: dict[str, str] = dict(conn.execute(_WEATHER).fetchall())
    sites: dict[str, list[tuple[str, str]]] = {}
    for kind, name, short in conn.execute(_SITES).fetchall():
        sites.setdefault(kind, []).append((short or short_name(name), name))
    cards = []
    for b in balances:
        b["assumptions"] = _json(b.get("assumptions"))
        kind = b["kind"]
        inc = _json(b["assumptions"].get("machine_learning_increment"))
        cf = _pick(b, "counterfactual")
        cf_name = (cf.get("name") if isinstance(cf, dict) else cf) or inc.get("baseline") \
            or b["assumptions"].get("baseline_model")
        model = chosen.get(kind) or b.get("model_name") or b["model_id"]
        be = _json(b.get("breakeven"))
        comps = _json(b["assumptions"].get("components"))
        # building: choosing the model (every rung tried) and training it; running: collecting
        # and forecasting; evaluation and reporting are shown apart when the balance has them
        build = [_f(_json(comps.get(n)).get("kwh")) for n in ("selection", "train")
                 if n in comps]
        run = [_f(_json(comps.get(n)).get("kwh")) for n in ("predict", "ingest") if n in comps]
        cards.append({
            "kind": kind, "sites": sites.get(kind, []), "model": str(model),
            "model_is_ml": str(model) not in NO_AI,
            "counterfactual": cf_name, "counterfactual_why": cf.get("why")
            if isinstance(cf, dict) else None,
            # the shipped default (best no-AI rung): its reason has words in the catalogue
            "counterfactual_default": isinstance(cf, dict) and str(
                cf.get("declared") or "").endswith("(best_no_ai)"),
            "nmae": rungs.get(kind, {}).get(str(model)),
            "day_ahead_skill": day_ahead.get(kind),
            "weather": weather.get(kind),
            "nmae_counterfactual": rungs.get(kind, {}).get(str(cf_name)),
            "period_h": _f(b["assumptions"].get("period_h")),
            "compute_kwh": _f(b.get("compute_kwh")),
            "compute_kwh_range": _range(_pick(b, "total_kwh_range", "compute_kwh_range")),
            "compute_kgco2e": _f(b.get("compute_kgco2e")),
            "build_kwh": None if None in build else sum(x or 0.0 for x in build),
            "run_kwh": None if None in run else sum(x or 0.0 for x in run),
            "selection_kwh": _f(_pick(b, "selection_kwh"))
            if _pick(b, "selection_kwh") is not None
            else _f(_json(comps.get("selection")).get("kwh")),
            "accounting_kwh": _f(_json(comps.get("accounting")).get("kwh")),
            # the balance says 'declared for <kind> in the benefit model' or 'benefit model default'
            "counterfactual_declared": isinstance(cf, dict)
            and str(cf.get("declared") or "").startswith("declared"),
            "avoided_kwh": _f(b.get("avoided_kwh")),
            "avoided_kgco2e": _f(b.get("avoided_kgco2e")),
            "avoided_kgco2e_range": _range(_pick(b, "avoided_kgco2e_range")),
            "energy_effect": _pick(b, "energy_effect"),
            # the machine's manufacturing share for the runs' hours (CO2e, not energy)
            "embodied_kgco2e": _f(_json(b["assumptions"].get("embodied")).get("kgco2e")),
            "embodied_kgco2e_range": _range(
                _json(b["assumptions"].get("embodied")).get("kgco2e_range")),
            "net_kgco2e": _f(b.get("net_kgco2e")),
            "net_kgco2e_range": _range(_pick(b, "net_kgco2e_range")),
            "payback_hours": _f(b.get("payback_hours")),
            "payback_hours_range": _range(_pick(b, "payback_hours_range")),
            "key": be.get("parameter"), "key_used": _f(be.get("value_used")),
            "key_breakeven": _f(be.get("breakeven_value")),
            "key_breakeven_range": _range(be.get("breakeven_range")),
            "ml_share": _f(inc.get("share")) if inc.get("is_machine_learning") else None,
            "method": b.get("method") or "",
        })
    return cards


# ------------------------------------------------------------------ words

def share_phrase(x: float | None, lang: Lang) -> str:
    """A share as a person reads it: '12 %' or, when tiny, '1 sur 280 millions'."""
    if x is None:
        return "–"
    if x >= 0.001:
        return hz.percent(x, lang)
    return ("1 sur " if lang == "fr" else "1 in ") + hz.count_words(1 / x, lang)


def _rung(name: str | None, t: dict[str, str]) -> str:
    if not name:
        return "–"
    return t.get(f"rung.{name}", name)


def _e(s: str) -> str:
    return html.escape(s, quote=False)


# A net loss below one gram CO2e over the period (a no-AI method that avoids nothing costs
# only its own milligrams of computing) is called negligible, with its signed figure, rather
# than "negative" like a real loss; the net row keeps the figure and its range.
NEGLIGIBLE_KGCO2E = 1e-3


def _in_range(t: dict[str, str], fmt: Any, pair: tuple[float, float], lang: Lang) -> str:
    return " " + t["verdict.range"].format(r=fmt(pair[0], pair[1], lang))


def _row(term: str, text: str) -> str:
    return f"<dt>{_e(term)}</dt><dd>{text}</dd>"


def render_card(c: dict[str, Any], lang: Lang, method_ref: str = "") -> str:
    t = labels(lang)
    kind = c["kind"]
    title = t.get(f"service.{kind}.title", kind)
    names = [f'<span title="{html.escape(full)}">{_e(short)}</span>'
             for short, full in c["sites"][:3]]
    more = len(c["sites"]) - len(names)
    where = ", ".join(names) + (t["verdict.more" + (".one" if more == 1 else "")].format(
        n=more) if more > 0 else "")
    one = ".one" if len(c["sites"]) == 1 else ""
    rows = [_row(t["verdict.what"],
                 _e(t.get(f"service.{kind}.what", "")) + " " + t["verdict.sites" + one].format(
                     n=len(c["sites"]), names=where).replace("….", "…"))]
    # accuracy against the counterfactual
    cf = _e(_rung(c["counterfactual"], t))
    if not c["model_is_ml"]:
        acc = t["verdict.no_ai"].format(model=_e(_rung(c["model"], t)))
    elif c["nmae"] is not None and c["nmae_counterfactual"]:
        gain = 1 - c["nmae"] / c["nmae_counterfactual"]
        which = "verdict.better.declared" if c["counterfactual_declared"] else "verdict.better"
        acc = t[which if gain >= 0 else "verdict.worse"].format(
            err=hz.percent(c["nmae"], lang), gain=hz.percent(abs(gain), lang), cf=cf,
            model=_e(_rung(c["model"], t)))
    else:
        acc = t["verdict.acc_unknown"].format(model=_e(_rung(c["model"], t)), cf=cf)
    if c.get("counterfactual_default"):
        if c["model_is_ml"]:   # a no-AI choice already says it needs no learning
            acc += f' <span class="note">({_e(t["verdict.cf_why.best_no_ai"])})</span>'
    elif c["counterfactual_why"] and lang == "en":  # a declared reason, as the YAML wrote it
        acc += f' <span class="note">({_e(rung_words(str(c["counterfactual_why"]), t))})</span>'
    if c["day_ahead_skill"] is not None and c["model_is_ml"]:
        skill = c["day_ahead_skill"]
        acc += " " + t["verdict.day_ahead" if skill >= 0 else "verdict.day_ahead_worse"].format(
            gain=hz.percent(abs(skill), lang))
    if c["weather"] in ("forecast_as_issued", "observed_standing_in"):
        acc += " " + _e(t[f"verdict.weather.{c['weather']}"])
    rows.append(_row(t["verdict.accuracy"], acc))
    # cost
    period = hz.duration_h(c["period_h"], lang)
    if c["compute_kwh"] is None:
        cost = _e(t["verdict.cost_unknown"])
    else:
        cost = t["verdict.cost"].format(kwh=hz.energy(c["compute_kwh"], lang),
                                        co2=hz.co2(c["compute_kgco2e"], lang), period=period)
        if c["compute_kwh_range"]:
            cost += _in_range(t, lambda lo, hi, lg: hz.energy_range(lo, hi, lg,
                                                                    like=c["compute_kwh"]),
                              c["compute_kwh_range"], lang)
        if c["build_kwh"] is not None and c["run_kwh"] is not None:
            cost += " " + t["verdict.split"].format(build=hz.energy(c["build_kwh"], lang),
                                                    run=hz.energy(c["run_kwh"], lang))
        if c["selection_kwh"] is not None:
            cost += " " + t["verdict.selection"].format(kwh=hz.energy(c["selection_kwh"], lang))
        if c["accounting_kwh"]:  # none recorded yet: nothing to say
            cost += " " + t["verdict.accounting"].format(kwh=hz.energy(c["accounting_kwh"], lang))
        # the bulb compares the electricity, so it follows the energy figures it converts
        bulb = hz.bulb(c["compute_kwh"], lang)
        if bulb:
            cost += f' <span class="compare">{_e(t["verdict.that_is"])} {_e(bulb)}.</span>'
        cost += f" {method_ref}"
        if c.get("embodied_kgco2e") is not None:
            cost += " " + t["verdict.embodied"].format(co2=hz.co2(c["embodied_kgco2e"], lang))
            if c.get("embodied_kgco2e_range"):
                cost += _in_range(t, hz.co2_range, c["embodied_kgco2e_range"], lang)
    rows.append(_row(t["verdict.cost_title"], cost))
    # avoided
    effect = c["energy_effect"]
    eff = t.get(f"verdict.effect.{effect}", "") if effect else ""
    av = t["verdict.avoided"].format(kwh=hz.energy(c["avoided_kwh"], lang), effect=eff,
                                     co2=hz.co2(c["avoided_kgco2e"], lang), period=period)
    if c["avoided_kgco2e_range"] and any(c["avoided_kgco2e_range"]):  # not "0 à 0"
        av += _in_range(t, hz.co2_range, c["avoided_kgco2e_range"], lang)
    if c["ml_share"] is not None:
        av += " " + t["verdict.ml_share"].format(share=hz.percent(c["ml_share"], lang))
    rows.append(_row(t["verdict.avoided_title"], av))
    # net and payback
    net = c["net_kgco2e"]
    if net is None:
        net_text = _e(t["verdict.net_unknown"])
    else:
        sign = "+" if net > 0 else ""
        net_text = t["verdict.net" if net >= 0 else "verdict.net_neg"].format(
            net=sign + hz.co2(net, lang))
        if c["net_kgco2e_range"]:
            net_text += _in_range(t, hz.co2_range, c["net_kgco2e_range"], lang)
        if c["payback_hours"] is not None:
            net_text += " " + t["verdict.payback"].format(d=hz.duration_h(c["payback_hours"],
                                                                          lang))
            if c["payback_hours_range"]:
                lo, hi = c["payback_hours_range"]
                net_text += " " + t["verdict.range"].format(
                    r=f"{hz.duration_h(lo, lang)} – {hz.duration_h(hi, lang)}")
        else:
            net_text += " " + _e(t["verdict.no_payback"])
    rows.append(_row(t["verdict.net_title"], net_text))
    # the deciding assumption
    key = c["key"]
    if key and c["key_breakeven"] is not None:
        decide = t.get(f"verdict.key.{key}", t["verdict.key.other"]).format(
            be=share_phrase(c["key_breakeven"], lang), used=share_phrase(c["key_used"], lang),
            key=_e(str(key)))
        rng = c["key_breakeven_range"]
        if rng:
            decide += " " + t["verdict.be_range"].format(lo=share_phrase(rng[0], lang),
                                                         hi=share_phrase(rng[1], lang))
    elif key and not c["model_is_ml"] and not c["avoided_kgco2e"]:
        decide = _e(t["verdict.key.no_ai"])
    elif key:
        decide = t["verdict.key.none"].format(key=_e(t.get(f"key.{key}", str(key))))
    else:
        decide = "–"
    rows.append(_row(t["verdict.decides"], decide))
    good = net is not None and net > 0
    if net is not None and net <= 0 and -net < NEGLIGIBLE_KGCO2E:
        badge, tone = t["verdict.badge.negligible"].format(net=hz.co2(net, lang)), "small"
    else:
        badge = t["verdict.badge.pos" if good else ("verdict.badge.unknown" if net is None
                                                     else "verdict.badge.neg")]
        tone = "pos" if good else "neg"
    return (f'<article class="verdict-card" aria-labelledby="v-{kind}">'
            f'<h3 id="v-{kind}">{_e(title)} <span class="badge {tone}">'
            f'{_e(badge)}</span></h3><dl>{"".join(rows)}</dl></article>')


def render_section(cards: list[dict[str, Any]], lang: Lang, method_ref: str = "") -> str:
    t = labels(lang)
    body = "".join(render_card(c, lang, method_ref) for c in cards) or \
        f'<p>{_e(t["verdict.empty"])}</p>'
    return (f'<section id="verdict"><h2>{_e(t["verdict.title"])}</h2>'
            f'<p>{_e(t["verdict.intro"])}</p><div class="verdict">{body}</div></section>')
