"""Frugality dashboard (evaluators): compute cost with how it was measured, avoided against
spent, net balance and payback, accuracy against energy for every model of the ladder.

Every energy figure is shown next to ``measurement_method``: on machines without RAPL the
energy is estimated (CPU load × TDP, constant RAM), never measured by hardware counters.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import barchart, text, xychart
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import xychart as xym

from ecodemo.dashboards.common import (
    base_dashboard,
    kind_label_sql,
    kind_variable,
    method_label_sql,
    rung_label_sql,
    stage_label_sql,
    stat_panel,
    table_panel,
    ts_panel,
)
from ecodemo.dashboards.labels import Lang, labels
from ecodemo.dashboards.sql import PG, Sql

UID = "ecodemo-frugality"
RUNS_FILTER = "$__timeFilter(c.started_at) AND (c.sensor_kind IN ($kind) OR c.sensor_kind IS NULL)"

TOTALS_SQL = f"""
    SELECT sum(c.energy_kwh) AS energy_kwh,
           count(*) FILTER (WHERE c.energy_kwh IS NULL) AS runs_not_measured,
           coalesce(string_agg(DISTINCT c.measurement_method, ', '), 'not measured')
             AS measurement_method
    FROM compute_runs c
    WHERE {RUNS_FILTER}
"""

CO2_TOTAL_SQL = f"""
    SELECT sum(c.emissions_kg) AS emissions_kgco2e,
           round(avg(c.carbon_intensity_g_per_kwh)::numeric, 1)::float8 AS intensity_g_per_kwh,
           coalesce(string_agg(DISTINCT c.intensity_source, ', '), '?') AS intensity_source
    FROM compute_runs c
    WHERE {RUNS_FILTER}
"""

# The three time series below share a skeleton; each panel's SQL stays whole, as Grafana runs it.
def kwh_stage_sql(lang: Lang = "fr") -> str:
    """Energy per stage over time, each series named by the stage and its method in words."""
    return f"""
    SELECT $__timeGroupAlias(c.started_at, $__interval),
           {stage_label_sql("c.stage", lang)} || ' · '
             || {method_label_sql("c.measurement_method", lang)} AS metric,
           sum(c.energy_kwh) AS energy_kwh
    FROM compute_runs c
    WHERE {RUNS_FILTER} AND c.energy_kwh IS NOT NULL
    GROUP BY 1, 2
    ORDER BY 1
    """


def co2_stage_sql(lang: Lang = "fr") -> str:
    return f"""
    SELECT $__timeGroupAlias(c.started_at, $__interval),
           {stage_label_sql("c.stage", lang)} AS metric,
           sum(c.emissions_kg) AS emissions_kg
    FROM compute_runs c
    WHERE {RUNS_FILTER} AND c.emissions_kg IS NOT NULL
    GROUP BY 1, 2
    ORDER BY 1
    """


def intensity_source_sql(column: str, t: dict[str, str]) -> str:
    """Where CodeCarbon took a run's intensity, in words (as the report's tables say it)."""
    # no '$' anchor: Grafana would read it as a variable
    english = r"CodeCarbon offline: annual average of the country''s electricity mix \((\w+)\)"
    words = t["intensity.codecarbon"].format(country="\\1").replace("'", "''")
    return f"regexp_replace({column}, '{english}', '{words}')"


def intensity_sql(t: dict[str, str]) -> str:
    label = t["fr.intensity"]
    return f"""
    SELECT $__timeGroupAlias(c.started_at, $__interval),
           '{label} · ' || coalesce({intensity_source_sql("c.intensity_source", t)}, '?')
             AS metric,
           avg(c.carbon_intensity_g_per_kwh) AS intensity
    FROM compute_runs c
    WHERE {RUNS_FILTER} AND c.carbon_intensity_g_per_kwh IS NOT NULL
    GROUP BY 1, 2
    ORDER BY 1
    """


PER_STAGE_MODEL_SQL = f"""
    SELECT c.stage, coalesce(m.name || ' v' || m.version, c.model_id, '-') AS model,
           coalesce(c.sensor_kind, '-') AS kind, count(*) AS runs,
           count(*) FILTER (WHERE c.energy_kwh IS NULL) AS not_measured,
           sum(c.energy_kwh) AS energy_kwh, sum(c.cpu_energy_kwh) AS cpu_kwh,
           sum(c.ram_energy_kwh) AS ram_kwh, sum(c.emissions_kg) AS kgco2e,
           avg(c.carbon_intensity_g_per_kwh) AS intensity_g_per_kwh,
           string_agg(DISTINCT c.intensity_source, ', ') AS intensity_source,
           coalesce(string_agg(DISTINCT c.measurement_method, ', '), 'not measured')
             AS measurement_method
    FROM compute_runs c LEFT JOIN models m ON m.model_id = c.model_id
    WHERE {RUNS_FILTER}
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
"""

METHODS_SQL = f"""
    SELECT coalesce(c.measurement_method, 'not measured') AS measurement_method,
           coalesce(c.tracking_mode, '-') AS tracking_mode, coalesce(c.cpu_model, '-') AS cpu,
           count(*) AS runs, sum(c.energy_kwh) AS energy_kwh,
           string_agg(DISTINCT c.codecarbon_version, ', ') AS codecarbon_version
    FROM compute_runs c
    WHERE {RUNS_FILTER}
    GROUP BY 1, 2, 3
    ORDER BY runs DESC
"""

LATEST_BALANCES = """
    WITH latest AS (
        SELECT DISTINCT ON (b.kind, b.model_id) b.*
        FROM balances b
        WHERE b.kind IN ($kind)
        ORDER BY b.kind, b.model_id, b.evaluated_at DESC
    )
"""


def avoided_sql(t: dict[str, str], lang: Lang = "fr") -> str:
    return LATEST_BALANCES + f"""
    SELECT {kind_label_sql("l.kind", lang)} || ' · ' || coalesce(
               {rung_label_sql("m.name", lang)} || ' v' || m.version, l.model_id) AS model,
           l.compute_kgco2e AS "{t['fr.spent']}", l.avoided_kgco2e AS "{t['fr.avoided_col']}",
           (l.assumptions->'machine_learning_increment'->>'avoided_kgco2e')::float8
             AS "{t['fr.ml_added_col']}"
    FROM latest l LEFT JOIN models m ON m.model_id = l.model_id
    ORDER BY 1
    """


BALANCE_TABLE_SQL = LATEST_BALANCES + """
    SELECT l.kind, coalesce(m.name || ' v' || m.version, l.model_id) AS model,
           l.period_start, l.period_end,
           -- the forecast the balance is compared with, and whether its energy is saved or
           -- only shifted to other producers (then it is in no kWh net)
           l.assumptions->'counterfactual'->>'name' AS counterfactual,
           l.assumptions->>'energy_effect' AS energy_effect,
           l.compute_kwh, l.assumptions->'ranges'->'compute_kwh_range' AS compute_kwh_range,
           (l.assumptions->'components'->'selection'->>'kwh')::float8 AS selection_kwh,
           l.compute_kgco2e,
           -- the machine's manufacturing share for the runs' hours, in the net when counted
           (l.assumptions->'embodied'->>'kgco2e')::float8 AS embodied_kgco2e,
           l.assumptions->'embodied'->'kgco2e_range' AS embodied_kgco2e_range,
           l.avoided_kwh, l.avoided_kgco2e,
           l.assumptions->'ranges'->'avoided_kgco2e_range' AS avoided_kgco2e_range,
           l.net_kgco2e, l.assumptions->'ranges'->'net_kgco2e_range' AS net_kgco2e_range,
           l.benefit_cost_ratio, l.payback_hours,
           l.assumptions->'ranges'->'payback_hours_range' AS payback_hours_range,
           l.breakeven->>'statement' AS breakeven,
           -- what the model adds over the best no-AI forecast (0 when it is one)
           l.assumptions->'machine_learning_increment'->>'baseline' AS best_no_ai_forecast,
           (l.assumptions->'machine_learning_increment'->>'avoided_kgco2e')::float8
             AS ml_added_avoided_kgco2e,
           (l.assumptions->'machine_learning_increment'->>'net_kgco2e')::float8
             AS ml_added_net_kgco2e,
           l.method, l.assumptions::text AS assumptions, l.evaluated_at
    FROM latest l LEFT JOIN models m ON m.model_id = l.model_id
    ORDER BY 1, 2
"""

def verdict_sql(t: dict[str, str], lang: Lang) -> str:
    """The verdict per forecast service, as the report's cards state it: net CO2 with its
    range, payback, and the break-even of the deciding assumption against the value used."""
    c = {k: t[f"fv.{k}"] for k in ("service", "net", "net_low", "net_high", "payback",
                                    "breakeven", "used", "counterfactual", "effect")}
    return LATEST_BALANCES + f"""
    SELECT {kind_label_sql("l.kind", lang)} AS "{c['service']}",
           l.net_kgco2e AS "{c['net']}",
           (l.assumptions->'ranges'->'net_kgco2e_range'->>0)::float8 AS "{c['net_low']}",
           (l.assumptions->'ranges'->'net_kgco2e_range'->>1)::float8 AS "{c['net_high']}",
           l.payback_hours AS "{c['payback']}",
           CASE WHEN coalesce(l.breakeven->>'unit', '1') = '1'
                THEN 100 * (l.breakeven->>'breakeven_value')::float8 END AS "{c['breakeven']}",
           CASE WHEN coalesce(l.breakeven->>'unit', '1') = '1'
                THEN 100 * (l.breakeven->>'value_used')::float8 END AS "{c['used']}",
           {rung_label_sql("l.assumptions->'counterfactual'->>'name'", lang)}
             AS "{c['counterfactual']}",
           CASE l.assumptions->>'energy_effect' WHEN 'saved' THEN '{t['fv.saved']}'
                WHEN 'shifted' THEN '{t['fv.shifted']}' END AS "{c['effect']}"
    FROM latest l
    ORDER BY 1
    """


def verdict_panel(t: dict[str, str], lang: Lang) -> Any:
    unit = {"net": "masskg", "net_low": "masskg", "net_high": "masskg", "payback": "h",
            "breakeven": "percent", "used": "percent"}
    p = table_panel(t["fv.title"], verdict_sql(t, lang), span=24, height=6)
    for key, u in unit.items():
        p = p.override_by_name(t[f"fv.{key}"], [
            dm.DynamicConfigValue(id_val="unit", value=u),
            dm.DynamicConfigValue(id_val="decimals", value=2 if u == "masskg" else 1)])
    return p.description(t["fv.desc"])


NET_SQL = LATEST_BALANCES + """
    SELECT sum(l.net_kgco2e) AS net_kgco2e, min(l.payback_hours) AS payback_hours
    FROM latest l
"""

def acc_energy_sql(lang: Lang = "fr") -> str:
    """Accuracy against training energy per ladder model, labelled in words."""
    return f"""
    WITH acc AS (
        SELECT e.model_id, sum(e.nmae * e.n) / nullif(sum(e.n), 0) AS nmae
        FROM evaluations e
        WHERE e.source = 'backtest' AND e.sensor_id = '__all__' AND e.nmae IS NOT NULL
          AND e.model_id IS NOT NULL AND e.kind IN ($kind)
        GROUP BY e.model_id
    ),
    energy AS (
        SELECT c.model_id, sum(c.energy_kwh) AS kwh,
               string_agg(DISTINCT c.measurement_method, ', ') AS method
        FROM compute_runs c
        WHERE c.stage = 'train' AND c.model_id IS NOT NULL
        GROUP BY c.model_id
    )
    SELECT DISTINCT ON (m.kind, m.name)
           {kind_label_sql("m.kind", lang)} || ' · ' || {rung_label_sql("m.name", lang)}
             || ' v' || m.version AS model,
           coalesce(en.kwh, m.train_energy_kwh) AS train_energy_kwh,
           100 * a.nmae AS nmae_pct,
           coalesce(en.method, 'not measured') AS measurement_method
    FROM models m
    JOIN acc a ON a.model_id = m.model_id
    LEFT JOIN energy en ON en.model_id = m.model_id
    WHERE m.kind IN ($kind)
    ORDER BY m.kind, m.name, m.version DESC
"""


def build(lang: Lang = "fr") -> dash.Dashboard:
    t = labels(lang)
    right_axis = [dm.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
                  dm.DynamicConfigValue(id_val="unit", value="none"),
                  dm.DynamicConfigValue(id_val="custom.drawStyle", value="line")]
    co2 = (ts_panel(t["fr.co2_stage"], co2_stage_sql(lang), span=12, min_interval="1h")
           .with_target(Sql(intensity_sql(t), ref_id="B"))
           .draw_style(cm.GraphDrawStyle.BARS).unit("masskg").decimals(2)
           .override_by_regexp("^" + t["fr.intensity"].split(" ")[0], right_axis))
    kwh = (ts_panel(t["fr.kwh_stage"], kwh_stage_sql(lang), span=12, min_interval="1h")
           .draw_style(cm.GraphDrawStyle.BARS).unit("kwatth").decimals(2))
    avoided = (
        barchart.Panel().title(t["fr.avoided"]).datasource(PG).span(12).height(9)
        .with_target(Sql(avoided_sql(t, lang)).format("table"))
        .x_field("model").show_value(cm.VisibilityMode.AUTO).stacking(cm.StackingMode.NONE)
        .unit("masskg").decimals(2)
    )
    acc_energy = (
        xychart.Panel().title(t["fr.acc_energy"]).datasource(PG).span(12).height(10)
        .with_target(Sql(acc_energy_sql(lang)).format("table"))
        .mapping(xym.SeriesMapping.MANUAL).show(xym.XYShowMode.POINTS)
        .series([
            xychart.XYSeriesConfig()
            .x(xychart.XychartXYSeriesConfigX().matcher(
                xychart.MatcherConfig().id("byName").options("train_energy_kwh")))
            .y(xychart.XychartXYSeriesConfigY().matcher(
                xychart.MatcherConfig().id("byName").options("nmae_pct")))
        ])
        .point_size(xychart.XychartFieldConfigPointSize().fixed(9))
        .override_by_name("train_energy_kwh", [
            dm.DynamicConfigValue(id_val="custom.scaleDistribution",
                                  value={"type": "log", "log": 10}),
            dm.DynamicConfigValue(id_val="unit", value="kwatth"),
            dm.DynamicConfigValue(id_val="decimals", value=2),
            dm.DynamicConfigValue(id_val="displayName", value=t["col.train_energy_kwh"]),
        ])
        .override_by_name("nmae_pct", [
            dm.DynamicConfigValue(id_val="unit", value="percent"),
            dm.DynamicConfigValue(id_val="displayName", value=t["col.nmae_pct"])])
        .override_by_name("measurement_method", [
            dm.DynamicConfigValue(id_val="displayName", value=t["col.measurement_method"])])
    )
    d = base_dashboard(t["frugality.title"], UID, "frugality", kind_variable(lang), lang)
    return (
        d.with_panel(text.Panel().title("").content(t["frugality.intro"]).span(24).height(3))
        .with_panel(verdict_panel(t, lang))
        .with_panel(stat_panel(t["fr.total_kwh"], TOTALS_SQL,
                               fields="/^(energy_kwh|measurement_method)$/", span=8, t=t))
        .with_panel(stat_panel(t["fr.total_co2"], CO2_TOTAL_SQL,
                               fields="/^(emissions_kgco2e|intensity_g_per_kwh|intensity_source)$/",
                               span=8, t=t))
        .with_panel(stat_panel(t["fr.net"], NET_SQL, fields="/^(net_kgco2e|payback_hours)$/",
                               span=8, t=t))
        .with_panel(kwh)
        .with_panel(co2)
        .with_panel(table_panel(t["fr.table"], PER_STAGE_MODEL_SQL, span=24, t=t, lang=lang))
        .with_panel(table_panel(t["fr.methods"], METHODS_SQL, span=24, height=6, t=t,
                                lang=lang))
        .with_panel(avoided)
        .with_panel(table_panel(t["fr.balance"], BALANCE_TABLE_SQL, span=12, height=9, t=t,
                                lang=lang))
        .with_panel(acc_energy)
        .with_panel(table_panel(t["fr.acc_energy_table"], acc_energy_sql(lang), span=12,
                                height=10, t=t, lang=lang))
    )
