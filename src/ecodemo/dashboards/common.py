"""Pieces shared by the three dashboards: variables, annotations, panel defaults."""

from __future__ import annotations

import re

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from ecodemo.dashboards.labels import Lang, labels
from ecodemo.dashboards.sql import PG, Sql, SqlAnnotation

# kind -> (French, English) display names; alike open_meteo.VARIABLES in shape only (data)
KIND_NAMES: dict[str, tuple[str, str]] = {
    "solar": ("solaire", "solar"),
    "wind": ("éolien", "wind"),
    "traffic": ("trafic routier", "road traffic"),
    "bike": ("vélo", "bike"),
    "pedestrian": ("piétons", "pedestrian"),
    "transit": ("transports en commun", "public transport"),
}


def site_label_sql(alias: str = "s") -> str:
    """SQL for a site's short display name: the catalogue's ``short_name``, else one derived
    from the full name as :func:`ecodemo.dashboards.humanize.short_name` does (the part after
    a 'Source label:' prefix, without parentheses, cut at a word past 32 characters)."""
    d = (f"btrim(regexp_replace(regexp_replace({alias}.name, '^[^:]*:\\s*', ''), "
         f"'\\s*\\([^)]*\\)', '', 'g'), ' -–')")
    return (f"coalesce({alias}.attributes->>'short_name', CASE WHEN length({d}) <= 32 "
            f"THEN {d} ELSE regexp_replace(left({d}, 31), '\\s+\\S*\\Z', '') || '…' END)")


RUNGS = ("persistence", "seasonal_naive", "climatology", "lgbm_small", "lgbm_large")


def rung_label_sql(column: str, lang: Lang) -> str:
    """A SQL CASE turning a ladder rung id (``seasonal_naive``) into its short words."""
    t = labels(lang)
    whens = " ".join(f"WHEN '{r}' THEN '{t[f'rung.short.{r}']}'" for r in RUNGS)
    return f"CASE {column} {whens} ELSE {column} END"


def words_sql(column: str, words: dict[str, str]) -> str:
    """A SQL CASE turning a column's codes into their words (the code itself when unknown)."""
    def q(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    whens = " ".join(f"WHEN {q(k)} THEN {q(v)}" for k, v in sorted(words.items()))
    return f"CASE {column} {whens} ELSE {column} END"


def stage_label_sql(column: str, lang: Lang) -> str:
    """A SQL CASE turning a stage code (``train``) into its words (``entraînement``)."""
    return words_sql(column, code_words(lang)["stage"])


def method_label_sql(column: str, lang: Lang) -> str:
    """A measurement method as one word: estimated, hardware counters or not measured."""
    t = labels(lang)
    return (f"CASE WHEN {column} LIKE 'estimated%' THEN '{t['method.kind.estimated']}' "
            f"WHEN {column} LIKE 'measured%' THEN '{t['method.kind.measured']}' "
            f"ELSE '{t['method.kind.not measured']}' END")


def kind_label_sql(column: str, lang: Lang) -> str:
    """A SQL CASE turning a kind code into its plain-language name."""
    i = 0 if lang == "fr" else 1
    whens = " ".join(f"WHEN '{k}' THEN '{v[i]}'" for k, v in KIND_NAMES.items())
    return f"CASE {column} {whens} ELSE {column} END"


def kind_variable(lang: Lang) -> dash.QueryVariable:
    """Multi-select of sensor kinds (``IN ($kind)``); 'All' selects every option."""
    return (
        dash.QueryVariable("kind").label(labels(lang)["kind"]).datasource(PG)
        .query("SELECT DISTINCT kind FROM sensors ORDER BY 1")
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD).multi(True).include_all(True)
        .current(dm.VariableOption(text="All", value="$__all"))
    )


def builtin_annotation() -> dash.AnnotationQuery:
    return (
        dash.AnnotationQuery().name("Annotations & Alerts").built_in(1).enable(True).hide(True)
        .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .icon_color("rgba(0, 211, 255, 1)").type("dashboard")
        .target(dash.AnnotationTarget().type("dashboard").limit(100).match_any(False).tags([]))
    )


def energy_text_sql(column: str, lang: Lang) -> str:
    """A kWh column as text in the unit that reads (J, Wh or kWh, 2 decimals at most, the
    language's decimal sign); the catalogue's words when it was not measured."""
    t = labels(lang)
    text = (f"CASE WHEN {column} < 1e-3 THEN round(({column} * 3.6e6)::numeric, 1)::text || ' J' "
            f"WHEN {column} < 1 THEN round(({column} * 1e3)::numeric, 2)::text || ' Wh' "
            f"ELSE round({column}::numeric, 2)::text || ' kWh' END")
    if lang == "fr":
        text = f"replace({text}, '.', ',')"
    return f"coalesce({text}, '{t['annot.not_measured']}')"


def training_annotation_sql(lang: Lang) -> str:
    """Training runs as annotations: which model, its energy in words and how it was measured."""
    t = labels(lang)
    model = (f"{kind_label_sql('m.kind', lang)} || ' ' || {rung_label_sql('m.name', lang)} "
             f"|| ' v' || m.version")
    return f"""
    SELECT c.started_at AS "time",
           c.started_at + make_interval(secs => coalesce(c.duration_s, 0)) AS timeend,
           '{t['annot.train_text']} ' || coalesce({model}, c.model_id,
                                {kind_label_sql('c.sensor_kind', lang)}, '')
             || ' · ' || {energy_text_sql('c.energy_kwh', lang)}
             || ' (' || {method_label_sql('c.measurement_method', lang)} || ')'
             || CASE WHEN c.status <> 'ok' THEN ' · {t['annot.failed']}' ELSE '' END AS text,
           'ecodemo,training,' || coalesce(c.sensor_kind, 'all') AS tags
    FROM compute_runs c LEFT JOIN models m ON m.model_id = c.model_id
    WHERE c.stage = 'train' AND $__timeFilter(c.started_at)
    ORDER BY 1
    """  # noqa: S608 (catalogue words and column names, no input)


def promotion_annotation_sql(lang: Lang) -> str:
    t = labels(lang)
    return f"""
    SELECT promoted_at AS "time",
           '{t['annot.promoted_text']} ' || {kind_label_sql('kind', lang)} || ' '
             || {rung_label_sql('name', lang)} || ' v' || version AS text,
           'ecodemo,promotion,' || kind AS tags
    FROM models
    WHERE promoted_at IS NOT NULL AND $__timeFilter(promoted_at)
    ORDER BY 1
    """  # noqa: S608 (catalogue words and column names, no input)


def event_annotations(lang: Lang) -> list[SqlAnnotation]:
    """Training runs (from compute_runs) and model promotions (from models), read by SQL so
    they also show on a Grafana provisioned from files, with no publishing step."""
    t = labels(lang)
    return [
        SqlAnnotation(t["annot.training"], training_annotation_sql(lang),
                      "rgba(255, 152, 48, 1)"),
        SqlAnnotation(t["annot.promotion"], promotion_annotation_sql(lang),
                      "rgba(115, 191, 105, 1)"),
    ]


def base_dashboard(title: str, uid: str, tag: str, variable: dash.QueryVariable, lang: Lang, *,
                   time_from: str = "now-30d", time_to: str = "now",
                   timezone: str = "utc") -> dash.Dashboard:
    """The header every ecodemo dashboard shares: tags, time range, 5 min refresh, crosshair,
    one variable, the built-in annotation and the training/promotion annotations."""
    d = (
        dash.Dashboard(title).uid(uid).tags(["ecodemo", tag])
        .time(time_from, time_to).refresh("5m").timezone(timezone).editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .with_variable(variable)
        .annotation(builtin_annotation())
    )
    for ann in event_annotations(lang):
        d = d.annotation(ann)
    return d


def legend() -> cb.VizLegendOptions:
    return (cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM).show_legend(True))


def tooltip() -> cb.VizTooltipOptions:
    return cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.NONE)


def ts_panel(title: str, sql: str, *, span: int = 12, height: int = 9,
             min_interval: str | None = None) -> timeseries.Panel:
    p = (timeseries.Panel().title(title).datasource(PG).span(span).height(height)
         .with_target(Sql(sql)).legend(legend()).tooltip(tooltip()).span_nulls(False))
    if min_interval:
        p = p.interval(min_interval)
    return p


#: Grafana units by the suffix of a column's name (units are in the names), with the decimals
#: shown: the energy and mass units scale by SI prefix (1.2 mWh, 4.5 mg), so a few decimals
#: are enough at any magnitude.
UNITS_BY_SUFFIX: tuple[tuple[str, str, int], ...] = (
    ("g_per_kwh", "suffix: g CO₂e/kWh", 0), ("_kwh", "kwatth", 2), ("kgco2e", "masskg", 2),
    ("emissions_kg", "masskg", 2), ("_hours", "h", 1), ("_pct", "percent", 1),
    ("duration_s", "s", 1), ("_seconds", "s", 1))


def unit_of(column: str) -> tuple[str, int] | None:
    """(Grafana unit id, decimals) for a column named with its unit, else None."""
    for suffix, unit, decimals in UNITS_BY_SUFFIX:
        if column.endswith(suffix):
            return unit, decimals
    return None


def _either(*names: str) -> str:
    """A field-name regex matching any of ``names`` exactly (before or after a rename)."""
    return "^(?:" + "|".join(re.escape(n) for n in names) + ")$"


def code_words(lang: Lang) -> dict[str, dict[str, str]]:
    """Per column holding codes, each code's words (the report's cells use the same)."""
    t = labels(lang)
    i = 0 if lang == "fr" else 1
    out = {"kind": {k: v[i] for k, v in KIND_NAMES.items()},
           "unit": {k[5:]: v for k, v in t.items() if k.startswith("unit.")}}
    for col, prefix in (("stage", "stage."), ("status", "status."),
                        ("energy_effect", "effect."), ("tracking_mode", "tracking_mode.")):
        out[col] = {k[len(prefix):]: v for k, v in t.items() if k.startswith(prefix)}
    return out


def output_columns(sql: str) -> list[str]:
    """The column names a query's select lists give (``x AS name``, ``t.name,``, ``name,``):
    the fields a table shows, for the unit and word overrides."""
    found = re.findall(r"(?:\bAS\s+|\.|SELECT\s+(?:DISTINCT ON \([^)]*\)\s+)?|,\s*)"
                       r"([a-z][a-z0-9_]*)\s*(?=,|\n|$)", sql)
    return sorted(set(found))


def table_panel(title: str, sql: str, *, span: int = 12, height: int = 8,
                t: dict[str, str] | None = None, lang: Lang = "fr") -> table.Panel:
    """A table; with the language's labels ``t``, its columns get word headers (the catalogue's
    ``col.<name>``) through Grafana's organize transformation, the SQL unchanged; columns of
    codes (kind, stage...) show words through value mappings, and columns named with a unit
    get it with bounded decimals."""
    p = (table.Panel().title(title).datasource(PG).span(span).height(height)
         .with_target(Sql(sql).format("table")).filterable(True))
    if t is not None:
        names = {k[4:]: v for k, v in t.items() if k.startswith("col.")}
        rename = {c: names[c] for c in sorted(names) if re.search(rf"\b{c}\b", sql)}
        if rename:
            p = p.with_transformation(dm.DataTransformerConfig(
                id_val="organize", options={"renameByName": rename}))
        for col in output_columns(sql):
            unit = unit_of(col)
            props: list[dm.DynamicConfigValue] = []
            if unit is not None:
                props = [dm.DynamicConfigValue(id_val="unit", value=unit[0]),
                         dm.DynamicConfigValue(id_val="decimals", value=unit[1])]
            words = code_words(lang).get(col)
            if words:
                props.append(dm.DynamicConfigValue(id_val="mappings", value=[
                    dm.ValueMap(options={k: dm.ValueMappingResult(text=v, index=i)
                                         for i, (k, v) in enumerate(sorted(words.items()))})]))
            if props:
                p = p.override_by_regexp(_either(col, *([rename[col]] if col in rename else [])),
                                         props)
    return p


def stat_panel(title: str, sql: str, *, fields: str, span: int = 6, height: int = 5,
               fmt: str = "table", t: dict[str, str] | None = None) -> stat.Panel:
    """A stat showing the fields matching the regex ``fields`` (strings included); with the
    language's labels ``t``, each shown field is named in words (the catalogue's
    ``col.<name>``, as a display-name override: the regex still matches the SQL's names)."""
    query = Sql(sql).format("table" if fmt == "table" else "time_series")
    p = (
        stat.Panel().title(title).datasource(PG).span(span).height(height).with_target(query)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(fmt == "table")
                        .fields(fields))
        .graph_mode(cm.BigValueGraphMode.AREA if fmt != "table" else cm.BigValueGraphMode.NONE)
        .color_mode(cm.BigValueColorMode.VALUE).text_mode(cm.BigValueTextMode.AUTO)
    )
    for name in re.findall(r"\w+", fields) if t is not None else []:
        props = []
        if t is not None and f"col.{name}" in t:
            props.append(dm.DynamicConfigValue(id_val="displayName", value=t[f"col.{name}"]))
        unit = unit_of(name)
        if unit is not None:
            props += [dm.DynamicConfigValue(id_val="unit", value=unit[0]),
                      dm.DynamicConfigValue(id_val="decimals", value=unit[1])]
        if props:
            p = p.override_by_name(name, props)
    return p

