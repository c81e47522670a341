"""Territory dashboard (staff and elected officials): now, next 48 h, map, reliability.

Every panel that shows the present anchors on the latest data at or before the end of the
displayed period, so the same dashboard reads correctly on live data and on the bundled
historical snapshot (move the time picker to the data's dates).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import geomap, text
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from ecodemo.dashboards.common import (
    base_dashboard,
    kind_label_sql,
    site_label_sql,
    stat_panel,
    ts_panel,
)
from ecodemo.dashboards.labels import Lang, labels
from ecodemo.dashboards.sql import PG, Sql
from ecodemo.units import NOT_ADDITIVE

UID = "ecodemo-territory"
RENEWABLE = "('solar', 'wind')"
MOBILITY = "('traffic', 'bike', 'pedestrian', 'transit')"
#: A site's short display name in SQL (full name in ``sites.name``, shown in tooltips).
SITE_LABEL = site_label_sql("s")


def site_variable(lang: Lang) -> dash.QueryVariable:
    return (
        dash.QueryVariable("site").label(labels(lang)["site"]).datasource(PG)
        .query(f"SELECT site_id AS __value, {SITE_LABEL} AS __text FROM sites s "
               "ORDER BY kind, name")
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD).multi(True).include_all(True)
        .current(dm.VariableOption(text="All", value="$__all"))
    )


# Per sensor, the latest reading at or before the end of the period (a backward index scan,
# LIMIT 1, that stops in the newest chunk). Then one range scan per distinct latest time
# (usually one or a few: sensors report together), over the sensors that share it: the 24 h
# before it. A range scan per sensor (the previous shape) rescanned the hypertable once per
# sensor, and TimescaleDB re-checks every chunk against the range at each rescan (runtime
# exclusion): 941 ms for 1,000 sensors x 53 chunks. OFFSET 0 keeps the range scan a LATERAL
# subquery: flattened into a join, the planner cannot size the range and hash-joins every
# reading (1.6 s at 8.76 M readings).
NOW_SQL = """
    WITH l AS (
        SELECT se.sensor_id, SITE_LABEL || ' (' || se.unit || ')' AS metric, lt.last_ts
        FROM sensors se
        JOIN sites s ON s.site_id = se.site_id
        CROSS JOIN LATERAL (
            SELECT ts AS last_ts FROM readings
            WHERE sensor_id = se.sensor_id AND ts <= $__timeTo()
            ORDER BY ts DESC LIMIT 1
        ) lt
        WHERE se.site_id IN ($site)
    ),
    w AS (SELECT last_ts, array_agg(sensor_id) AS sensor_ids FROM l GROUP BY last_ts)
    SELECT r.ts AS "time", l.metric, r.value
    FROM w
    CROSS JOIN LATERAL (
        SELECT sensor_id, ts, value FROM readings
        WHERE sensor_id = ANY (w.sensor_ids)
          AND ts > w.last_ts - interval '24 hours' AND ts <= w.last_ts
        OFFSET 0
    ) r
    JOIN l ON l.sensor_id = r.sensor_id
    ORDER BY 1
""".replace("SITE_LABEL", SITE_LABEL)


#: Past this many site lines a chart is unreadable: the history panels then draw one line per
#: kind and unit, the sum over the selected sites (pick fewer sites to see each one).
MAX_SITE_LINES = 20


def history_sql(kinds: str, t: dict[str, str], lang: Lang,
                max_lines: int = MAX_SITE_LINES) -> str:
    """One line per site label (``$__interval`` averages) for sensors of ``kinds``, or, when
    more than ``max_lines`` labels are selected, one line per kind and unit: the sum over the
    sites of each sensor's bucket average (their mean for a ratio such as road occupancy in %).

    The chosen sensors are resolved first (a few hundred rows) and each gets a line number; the
    readings are read by one range scan on the (sensor_id, ts) key per sensor, averaged per
    bucket, then combined per (bucket, line), and the text labels are joined back last, so no
    text travels with each reading.
    """
    not_additive = ", ".join(f"'{u}'" for u in NOT_ADDITIVE)
    return f"""
    WITH s0 AS (
        SELECT se.sensor_id, se.kind, se.unit,
               {SITE_LABEL} || ' (' || se.unit || ')' AS site_metric
        FROM sensors se JOIN sites s ON s.site_id = se.site_id
        WHERE se.site_id IN ($site) AND se.kind IN {kinds}
    ),
    m AS (
        SELECT s0.sensor_id, n.many, s0.unit NOT IN ({not_additive}) AS additive,
               CASE WHEN n.many
                    THEN {kind_label_sql('s0.kind', lang)} || ' · ' ||
                         count(*) OVER (PARTITION BY s0.kind, s0.unit) || ' ' ||
                         CASE WHEN s0.unit IN ({not_additive}) THEN '{t["sites_mean"]}'
                              ELSE '{t["sites_total"]}' END || ' (' || s0.unit || ')'
                    ELSE s0.site_metric END AS metric
        FROM s0 CROSS JOIN (SELECT count(DISTINCT site_metric) > {int(max_lines)} AS many
                            FROM s0) n
    ),
    ml AS (SELECT m.*, dense_rank() OVER (ORDER BY m.metric) AS metric_id FROM m),
    -- Per sensor, a range scan on the (sensor_id, ts) key grouped by bucket (LATERAL: one
    -- small aggregate per sensor). date_bin gives a fixed-width timestamp key, cheaper to
    -- group than the numeric epoch arithmetic of the timeGroup macro.
    b AS (
        SELECT x.bucket, ml.metric_id,
               CASE WHEN bool_or(ml.many) AND bool_and(ml.additive) THEN sum(x.value)
                    ELSE avg(x.value) END AS value
        FROM ml CROSS JOIN LATERAL (
            SELECT date_bin(make_interval(secs => $__interval_ms / 1000.0), r.ts,
                            timestamptz '2000-01-01 00:00:00+00') AS bucket,
                   avg(r.value) AS value
            FROM readings r
            WHERE r.sensor_id = ml.sensor_id AND $__timeFilter(r.ts)
            GROUP BY 1) x
        GROUP BY 2, 1
    )
    SELECT b.bucket AS "time", k.metric, b.value
    FROM b JOIN (SELECT DISTINCT metric_id, metric FROM ml) k ON k.metric_id = b.metric_id
    ORDER BY 1
    """


def actual_sql(t: dict[str, str]) -> str:
    return f"""
    SELECT $__timeGroupAlias(ts, $__interval), avg(value) AS "{t['actual']}"
    FROM readings
    WHERE sensor_id IN ($site) AND $__timeFilter(ts)
    GROUP BY 1
    ORDER BY 1
    """


def forecast_sql(t: dict[str, str]) -> str:
    # The latest issue at or before the end of the period; among models issued together, the
    # promoted one. Past issues stay in the table, so moving the picker back shows what was
    # forecast then.
    return f"""
    WITH latest AS (
        SELECT f.model_id, f.issued_at
        FROM forecasts f LEFT JOIN models m ON m.model_id = f.model_id
        WHERE f.sensor_id IN ($site) AND f.issued_at <= $__timeTo()
        ORDER BY f.issued_at DESC, (m.status = 'promoted') DESC NULLS LAST, f.model_id
        LIMIT 1
    )
    SELECT f.ts AS "time", f.p10 AS "{t['p10']}", f.p50 AS "{t['p50']}",
           f.p90 AS "{t['p90']}"
    FROM forecasts f JOIN latest l ON l.model_id = f.model_id AND l.issued_at = f.issued_at
    WHERE f.sensor_id IN ($site) AND f.ts <= l.issued_at + interval '48 hours'
    ORDER BY 1
    """


MAP_SQL = f"""
    SELECT {SITE_LABEL} AS name, s.name AS full_name, s.kind, s.latitude AS lat,
           s.longitude AS lon, l.value AS last_value, se.unit, l.ts AS last_ts
    FROM sites s
    JOIN sensors se ON se.site_id = s.site_id
    LEFT JOIN LATERAL (
        SELECT ts, value FROM readings
        WHERE sensor_id = se.sensor_id AND ts <= $__timeTo()
        ORDER BY ts DESC LIMIT 1
    ) l ON true
    WHERE s.site_id IN ($site) AND s.latitude IS NOT NULL AND s.longitude IS NOT NULL
    ORDER BY s.kind, s.name
"""


def quality_sql(t: dict[str, str], lang: Lang) -> str:
    """nMAE of the live forecasts over the 30 days before the latest live evaluation.

    Scored as the backtest scores (``ecodemo.models.metrics``): per sensor, the mean absolute
    error over every evaluated point divided by the mean |measurement| over the same points,
    then the mean over sensors. The live rows are per horizon, and a horizon whose targets fall
    at night has a near-zero mean (solar): averaging their nMAEs gave figures in the hundreds
    of percent, so the sums are pooled instead (MAE x n and, from MAE / nMAE, mean |actual| x n;
    a row with no nMAE but an MAE measured zero on average: adds its error, not its level).
    Per-sensor rows are used when they exist for the chosen sites, else the kind's
    ``__all__`` aggregate; only the model the ladder chose last for that kind.
    """
    phrase = t["quality.phrase"].replace("'", "''")
    return f"""
    WITH kinds AS (SELECT DISTINCT kind FROM sites WHERE site_id IN ($site)),
    choice AS (
        SELECT DISTINCT ON (kind) kind, chosen_name FROM model_choices
        ORDER BY kind, decided_at DESC
    ),
    last AS (
        SELECT e.kind, max(e.period_end) AS last_end FROM evaluations e
        WHERE e.source = 'live' AND e.period_end <= $__timeTo()
        GROUP BY e.kind
    ),
    ev AS (
        SELECT e.kind, e.sensor_id, e.mae * e.n AS err_sum,
               CASE WHEN e.nmae > 0 THEN e.mae / e.nmae * e.n
                    WHEN e.nmae IS NULL THEN 0 END AS level_sum
        FROM evaluations e
        JOIN kinds k ON k.kind = e.kind
        JOIN last ON last.kind = e.kind
        LEFT JOIN choice c ON c.kind = e.kind
        WHERE e.source = 'live' AND e.mae IS NOT NULL AND e.n > 0
          AND e.period_end > last.last_end - interval '30 days'
          AND e.period_end <= last.last_end
          AND (c.chosen_name IS NULL OR e.model_name = c.chosen_name)
          AND (e.sensor_id = '__all__' OR e.sensor_id IN ($site))
    ),
    per_sensor AS (
        SELECT kind, sensor_id, sum(err_sum) / nullif(sum(level_sum), 0) AS nmae
        FROM ev
        WHERE sensor_id <> '__all__'
           OR NOT EXISTS (SELECT 1 FROM ev e2 WHERE e2.kind = ev.kind
                          AND e2.sensor_id <> '__all__')
        GROUP BY kind, sensor_id
    ),
    per_kind AS (
        SELECT kind, 100 * avg(nmae) AS within_pct
        FROM per_sensor WHERE nmae IS NOT NULL
        GROUP BY kind
    )
    SELECT kind, round(within_pct::numeric, 0)::float8 AS within_pct,
           format('{phrase}', {kind_label_sql('kind', lang)},
                  round(within_pct::numeric, 0)) AS phrase
    FROM per_kind
    ORDER BY kind
    """


def build(lang: Lang = "fr") -> dash.Dashboard:
    t = labels(lang)
    band = [
        dm.DynamicConfigValue(id_val="custom.fillBelowTo", value=t["p10"]),
        dm.DynamicConfigValue(id_val="custom.lineWidth", value=0),
        dm.DynamicConfigValue(id_val="custom.fillOpacity", value=25),
        dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "blue"}),
    ]
    low = [
        dm.DynamicConfigValue(id_val="custom.lineWidth", value=0),
        dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "blue"}),
    ]
    median = [
        dm.DynamicConfigValue(id_val="custom.lineStyle",
                              value={"fill": "dash", "dash": [10, 10]}),
        dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "blue"}),
    ]
    actual = [dm.DynamicConfigValue(id_val="color",
                                    value={"mode": "fixed", "fixedColor": "green"})]
    forecast = (
        ts_panel(t["forecast.title"], actual_sql(t), span=12, height=10, min_interval="1h")
        .with_target(Sql(forecast_sql(t), ref_id="B"))
        .description(t["forecast.desc"])
        .repeat("site").repeat_direction("h").max_per_row(2)
        .override_by_name(t["p90"], band).override_by_name(t["p10"], low)
        .override_by_name(t["p50"], median).override_by_name(t["actual"], actual)
    )
    sites_map = (
        geomap.Panel().title(t["map.title"]).datasource(PG).span(12).height(10)
        .with_target(Sql(MAP_SQL).format("table"))
        .view(geomap.MapViewConfig().id("coords").lat(48).lon(2).zoom(7))
        .basemap(cb.MapLayerOptions().type("osm-standard").name("Basemap"))
        .layers([cb.MapLayerOptions().type("markers").name(t["site"])
                 .location(cb.FrameGeometrySource().mode(cm.FrameGeometrySourceMode.COORDS)
                           .latitude("lat").longitude("lon"))
                 .tooltip(True)])
    )
    for col, key in (("name", "site"), ("full_name", "col.full_name"), ("kind", "col.kind"),
                     ("last_value", "col.last_value"), ("unit", "col.unit"),
                     ("last_ts", "col.last_ts")):
        sites_map = sites_map.override_by_name(
            col, [dm.DynamicConfigValue(id_val="displayName", value=t[key])])
    quality = stat_panel(t["quality.title"], quality_sql(t, lang), fields="/^phrase$/",
                         span=12, height=10).description(t["quality.desc"])
    history_desc = t["history.desc"].format(n=MAX_SITE_LINES)
    d = base_dashboard(t["territory.title"], UID, "territory", site_variable(lang), lang,
                       time_from="now-2d", time_to="now+2d", timezone="Europe/Paris")
    return (
        d.with_row(dash.Row(t["rows.now"]))
        .with_panel(text.Panel().title("").content(t["territory.intro"]).span(24).height(3))
        .with_panel(stat_panel(t["now.title"], NOW_SQL, fields="", span=24, height=6,
                               fmt="time_series").description(t["now.desc"]))
        .with_row(dash.Row(t["rows.forecast"]))
        .with_panel(quality)
        .with_panel(sites_map)
        .with_panel(forecast)
        .with_row(dash.Row(t["rows.history"]))
        .with_panel(ts_panel(t["production.title"], history_sql(RENEWABLE, t, lang),
                             min_interval="1h").description(history_desc))
        .with_panel(ts_panel(t["mobility.title"], history_sql(MOBILITY, t, lang),
                             min_interval="1h").description(history_desc))
    )

