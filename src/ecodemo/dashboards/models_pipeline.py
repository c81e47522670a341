"""Models and pipeline dashboard (engineers): registry, ladder, drift, data quality, stages.

Panels about the data (accuracy by evaluated period, quality flags) follow the time picker;
panels about the pipeline's own runs (wall-clock ``compute_runs``) carry a relative time
override of 7 days, so both read correctly when the data is historical (the bundled snapshot).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import common as cm

from ecodemo.dashboards.common import (
    base_dashboard,
    kind_label_sql,
    kind_variable,
    rung_label_sql,
    stage_label_sql,
    table_panel,
    ts_panel,
    words_sql,
)
from ecodemo.dashboards.labels import Lang, labels

UID = "ecodemo-models"
RUNS_WINDOW = "7d"

VERSIONS_SQL = """
    SELECT m.kind, m.name, m.version, m.status, m.created_at, m.promoted_at,
           m.train_start, m.train_end, m.train_seconds, m.train_energy_kwh,
           coalesce(tr.measurement_method, 'not measured') AS measurement_method,
           m.metrics::text AS metrics, m.model_id
    FROM models m
    LEFT JOIN LATERAL (
        SELECT c.measurement_method FROM compute_runs c
        WHERE c.model_id = m.model_id AND c.stage = 'train'
        ORDER BY c.started_at DESC LIMIT 1
    ) tr ON true
    WHERE m.kind IN ($kind)
    ORDER BY m.kind, m.name, m.version DESC
"""

CHOICE_SQL = """
    SELECT DISTINCT ON (kind) kind, decided_at, chosen_name, model_id, tolerance, reason,
           jsonb_array_length(candidates) AS candidates_compared, candidates::text AS candidates
    FROM model_choices
    WHERE kind IN ($kind)
    ORDER BY kind, decided_at DESC
"""

def accuracy_sql(lang: Lang = "fr") -> str:
    """nMAE over time per kind, rung and source (backtest or live), named in words."""
    t = labels(lang)
    source = words_sql("e.source", {k: t[f"source.{k}"] for k in ("backtest", "live")})
    return f"""
    SELECT e.period_end AS "time",
           {kind_label_sql("e.kind", lang)} || ' · ' || {rung_label_sql("e.model_name", lang)}
             || ' · ' || {source} AS metric,
           100 * sum(e.nmae * e.n) / nullif(sum(e.n), 0) AS nmae_pct
    FROM evaluations e
    WHERE $__timeFilter(e.period_end) AND e.kind IN ($kind) AND e.sensor_id = '__all__'
      AND e.nmae IS NOT NULL
    GROUP BY 1, 2
    ORDER BY 1
"""

FRESHNESS_SQL = """
    SELECT se.sensor_id, se.kind, se.unit, l.last_ts,
           round((extract(epoch FROM now() - l.last_ts) / 3600)::numeric, 1)::float8
             AS age_hours,
           q.n_readings, q.n_gaps,
           round((extract(epoch FROM q.longest_gap) / 3600)::numeric, 1)::float8
             AS longest_gap_hours,
           q.n_flagged, coalesce(qa.n, 0) AS n_quarantined, q.flags::text AS flags,
           q.checked_at
    FROM sensors se
    LEFT JOIN LATERAL (
        SELECT max(r.ts) AS last_ts FROM readings r WHERE r.sensor_id = se.sensor_id
    ) l ON true
    LEFT JOIN sensor_quality q ON q.sensor_id = se.sensor_id
    LEFT JOIN (SELECT sensor_id, count(*) AS n FROM quarantine GROUP BY sensor_id) qa
           ON qa.sensor_id = se.sensor_id
    WHERE se.kind IN ($kind)
    ORDER BY se.kind, se.sensor_id
"""

def flags_sql(lang: Lang = "fr") -> str:
    """Flagged readings over time per flag, named in words ('pics', not 'spike')."""
    t = labels(lang)
    words = {k[5:]: v for k, v in t.items() if k.startswith("flag.") and k != "flag.count"}
    return f"""
    SELECT $__timeGroupAlias(r.ts, $__interval), {words_sql("f.name", words)} AS metric,
           count(*) AS readings
    FROM readings r
    JOIN sensors se ON se.sensor_id = r.sensor_id
    JOIN quality_flag_names f ON (r.quality_flags & f.bit) <> 0
    WHERE $__timeFilter(r.ts) AND r.quality_flags <> 0 AND se.kind IN ($kind)
    GROUP BY 1, 2
    ORDER BY 1
"""

def durations_sql(lang: Lang = "fr") -> str:
    return f"""
    SELECT started_at AS "time", {stage_label_sql("stage", lang)} AS metric, duration_s
    FROM compute_runs
    WHERE $__timeFilter(started_at) AND duration_s IS NOT NULL
      AND (sensor_kind IN ($kind) OR sensor_kind IS NULL)
    ORDER BY 1
"""

FAILURES_SQL = """
    SELECT stage, count(*) AS runs,
           count(*) FILTER (WHERE status <> 'ok') AS failed,
           max(started_at) FILTER (WHERE status <> 'ok') AS last_failure,
           (array_agg(error ORDER BY started_at DESC) FILTER (WHERE status <> 'ok'))[1]
             AS last_error,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_s) AS median_duration_s,
           max(duration_s) AS max_duration_s
    FROM compute_runs
    WHERE $__timeFilter(started_at) AND (sensor_kind IN ($kind) OR sensor_kind IS NULL)
    GROUP BY stage
    ORDER BY stage
"""


def build(lang: Lang = "fr") -> dash.Dashboard:
    t = labels(lang)
    accuracy = (ts_panel(t["models.accuracy"], accuracy_sql(lang), span=24, height=9)
                .description(t["models.accuracy.desc"]).unit("percent")
                .show_points(cm.VisibilityMode.ALWAYS).min(0))
    flags = (ts_panel(t["models.flags"], flags_sql(lang), span=12, min_interval="1h")
             .draw_style(cm.GraphDrawStyle.BARS)
             .stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL)))
    durations = (ts_panel(t["models.durations"], durations_sql(lang), span=12)
                 .draw_style(cm.GraphDrawStyle.POINTS).unit("s").point_size(6)
                 .time_from(RUNS_WINDOW))
    failures = table_panel(t["models.failures"], FAILURES_SQL, span=12, t=t,
                           lang=lang).time_from(RUNS_WINDOW)
    d = base_dashboard(t["models.title"], UID, "models", kind_variable(lang), lang)
    return (
        d.with_panel(table_panel(t["models.versions"], VERSIONS_SQL, span=24, height=8, t=t,
                                lang=lang))
        .with_panel(table_panel(t["models.choice"], CHOICE_SQL, span=24, height=6, t=t,
                                lang=lang))
        .with_panel(accuracy)
        .with_panel(table_panel(t["models.freshness"], FRESHNESS_SQL, span=24, height=8, t=t,
                                lang=lang))
        .with_panel(flags)
        .with_panel(durations)
        .with_panel(failures)
    )

