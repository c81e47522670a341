"""What the dashboards' fields show, on a store filled like the demo fills it: every energy and
CO2 figure with its unit and a bounded number of decimals (never 6-decimal kWh), and no table
cell showing a raw kind code ('bike', 'traffic') where a reader expects words.

Grafana itself cannot run here: its field config is applied as Grafana applies it, from the
committed JSON (defaults, then the overrides whose matcher takes the field, by its name or
by the name an organize transformation gave it).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import psycopg

from ecodemo.dashboards.common import KIND_NAMES, code_words
from ecodemo.dashboards.grafana_sql import expand
from ecodemo.dashboards.labels import labels
from tests.integration.test_dashboard_sql import DASHBOARDS, _cases
from tests.pipeline_rows import FilledStore

ENERGY_UNITS = {"kwatth", "watth", "mwatth", "joule"}
MASS_UNITS = {"masskg", "massg", "massmg", "masst"}
MAX_DECIMALS = 3


def _panels() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(DASHBOARDS.glob("ecodemo-*.json")):
        d = json.loads(path.read_text(encoding="utf-8"))
        for panel in d["panels"]:
            out[f"{d['uid']}/{panel['id']}"] = panel
    return out


def _renamed(panel: dict[str, Any], col: str) -> str:
    for tr in panel.get("transformations") or []:
        if tr["id"] == "organize":
            return str(tr["options"].get("renameByName", {}).get(col, col))
    return col


def _regex(pattern: str) -> re.Pattern[str]:
    m = re.fullmatch(r"/(.*)/([a-z]*)", pattern)
    return re.compile(m.group(1) if m else pattern)


def field_config(panel: dict[str, Any], col: str | None) -> dict[str, Any]:
    """The config Grafana gives field ``col`` (None: a series named by its metric, which only
    the defaults reach)."""
    fc = panel.get("fieldConfig") or {}
    cfg = dict(fc.get("defaults") or {})
    names = {col, _renamed(panel, col)} if col else set()
    for o in fc.get("overrides") or []:
        matcher, opt = o["matcher"]["id"], str(o["matcher"].get("options", ""))
        hit = (matcher == "byName" and opt in names) or (
            matcher == "byRegexp" and any(_regex(opt).search(n) for n in names))
        if hit:
            cfg.update({p["id"]: p.get("value") for p in o["properties"]})
    return cfg


def _numeric(v: object) -> bool:
    return isinstance(v, int | float | Decimal) and not isinstance(v, bool)


def _rows(store: FilledStore) -> list[tuple[Any, dict[str, Any], list[str], list[tuple]]]:
    """(case, panel, columns, rows) of every panel target, run as Grafana runs it."""
    panels = _panels()
    out = []
    with psycopg.connect(store.url, autocommit=True) as conn:
        for case in _cases(store):
            if case.title.startswith("annotation"):
                continue
            cur = conn.execute(expand(case.sql, case.ctx))
            out.append((case, panels[case.key.rsplit("/", 1)[0]],
                        [c.name for c in cur.description or []], cur.fetchall()))
    return out


def test_energy_and_co2_fields_have_a_unit_and_bounded_decimals(
        filled_store: FilledStore) -> None:
    checked, bad = 0, []
    for case, panel, cols, rows in _rows(filled_store):
        shown = (panel.get("options", {}).get("reduceOptions", {}).get("fields")
                 if panel["type"] == "stat" else None)
        for i, col in enumerate(cols):
            energy = col.endswith("_kwh") and not col.endswith("g_per_kwh")
            mass = col.endswith(("kgco2e", "emissions_kg"))
            if not (energy or mass) or not any(_numeric(r[i]) for r in rows):
                continue
            if shown is not None and not (shown and _regex(shown).search(col)):
                continue
            series = case.fmt == "time_series" and "metric" in cols
            cfg = field_config(panel, None if series else col)
            units = ENERGY_UNITS if energy else MASS_UNITS
            decimals = cfg.get("decimals")
            checked += 1
            if cfg.get("unit") not in units or decimals is None or decimals > MAX_DECIMALS:
                bad.append(f"{case.dashboard} / {case.title} / {col}: unit "
                           f"{cfg.get('unit')!r}, decimals {decimals!r}")
    assert checked >= 15
    assert not bad, "\n".join(sorted(set(bad)))


def _codes_shown(value: object, mappings: list[dict[str, Any]]) -> str | None:
    """The text a cell shows after the value mappings, when it is (or starts with) a code."""
    text = str(value)
    for m in mappings:
        if m.get("type") == "value" and text in m.get("options", {}):
            text = str(m["options"][text].get("text", text))
    return text if text.split(" ")[0] in KIND_NAMES else None


def test_no_table_cell_shows_a_kind_code(filled_store: FilledStore) -> None:
    checked, bad = 0, []
    for case, panel, cols, rows in _rows(filled_store):
        if panel["type"] not in ("table", "barchart") or case.fmt != "table":
            continue
        for i, col in enumerate(cols):
            mappings = field_config(panel, col).get("mappings") or []
            for r in rows:
                if isinstance(r[i], str):
                    checked += 1
                    code = _codes_shown(r[i], mappings)
                    if code:
                        bad.append(f"{case.dashboard} / {case.title} / {col}: {code!r}")
    assert checked >= 100
    assert not bad, "\n".join(sorted(set(bad))[:20])


def test_the_checks_catch_what_they_should() -> None:
    panel = {"fieldConfig": {"defaults": {"unit": "kwatth", "decimals": 6}, "overrides": [
        {"matcher": {"id": "byRegexp", "options": "^(?:kind|Type)$"}, "properties": [
            {"id": "mappings", "value": [{"type": "value", "options": {
                "bike": {"text": "vélo"}}}]}]}]},
        "transformations": [{"id": "organize", "options": {"renameByName": {"kind": "Type"}}}]}
    assert field_config(panel, None)["decimals"] == 6   # too many: the test above fails
    mappings = field_config(panel, "kind")["mappings"]
    assert _codes_shown("bike", mappings) is None
    assert _codes_shown("traffic", mappings) == "traffic"
    assert _codes_shown("bike · lgbm_small v2", []) == "bike · lgbm_small v2"
    assert _codes_shown("Paris bike counter", []) is None


def test_no_series_is_named_by_a_code(filled_store: FilledStore) -> None:
    """A time series' name (its 'metric' column) reads as words: 'entraînement · estimation',
    'vélo · LightGBM grand · test rétrospectif', not 'train · estimated: CPU...' or 'bike'."""
    stages = set(code_words("fr")["stage"])
    flags = {k[5:] for k in labels("fr") if k.startswith("flag.")}
    checked, bad = 0, []
    for case, _panel, cols, rows in _rows(filled_store):
        if case.fmt != "time_series" or "metric" not in cols:
            continue
        i = cols.index("metric")
        for r in rows:
            checked += 1
            words = str(r[i]).split(" · ")
            if words[0] in set(KIND_NAMES) | stages | flags or any(
                    w.startswith(("estimated", "measured", "not measured", "CodeCarbon offline"))
                    for w in words):
                bad.append(f"{case.dashboard} / {case.title}: {r[i]!r}")
    assert checked >= 20
    assert not bad, "\n".join(sorted(set(bad))[:20])


def test_annotations_read_in_words_with_a_readable_energy(filled_store: FilledStore) -> None:
    """Training and promotion annotations in the dashboard's language: 'entraînement vélo
    LightGBM grand v2 · 91 J (estimation)', not 'train bike lgbm_large v2 · 0.000025 kWh'."""
    texts = []
    with psycopg.connect(filled_store.url, autocommit=True) as conn:
        for case in _cases(filled_store):
            if case.title.startswith("annotation"):
                cur = conn.execute(expand(case.sql, case.ctx))
                cols = [c.name for c in cur.description or []]
                texts += [str(r[cols.index("text")]) for r in cur.fetchall()]
    assert len(texts) >= 4
    bad = [x for x in texts if x.startswith(("train ", "promoted "))
           or re.search(r"\d[.,]\d{3,}", x) or "estimated" in x
           or any(f" {k} " in f" {x} " for k in KIND_NAMES)]
    assert not bad, bad[:5]
    assert any(x.startswith("entraînement ") for x in texts)
    assert any(x.startswith("mis en service : ") for x in texts)
