"""ecodemo_forecast: every hour, the next 48 h per kind with its promoted model (Asset forecasts).

Wiring only: each task is one call into ``ecodemo.pipeline``; ecodemo is imported inside tasks.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, TriggerRule, dag, task
from ecodemo_dag_common import DEFAULT_ARGS, FORECASTS, START_DATE, TAGS, TIMEZONE, settings

HORIZON_H = 48

DOC = f"""
### Forecast (hourly)

One mapped task per kind that has a **promoted** model (`models.status = 'promoted'`): forecasts
p10/p50/p90 for the next {HORIZON_H} h, issued at the end of this run's data interval. When a
kind's data stops earlier (a late feed, or the historical bundled snapshot), the forecast is
issued from its latest reading instead, never from data it did not see. Forecasts are keyed by
(sensor, model, issued_at, time): a rerun of the same interval overwrites, it adds nothing, and
past forecasts are kept so accuracy is measured on what was known at issue time. Each task is
measured as a `predict` row in `compute_runs`.

Emits the `ecodemo_forecasts` Asset when at least one kind was forecast (the publish DAG
listens); `all_kinds_forecast` fails the run when any kind failed.
"""


@dag(
    dag_id="ecodemo_forecast",
    schedule=CronDataIntervalTimetable("5 * * * *", timezone=TIMEZONE),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "forecast"],
    doc_md=DOC,
)
def ecodemo_forecast() -> None:
    @task
    def kinds_with_model() -> list[str]:
        from ecodemo import pipeline

        return pipeline.kinds(settings(), with_model=True)

    @task
    def forecast(kind: str, data_interval_end: Any = None) -> dict[str, Any]:
        from ecodemo import pipeline

        return pipeline.forecast(settings(), kind, data_interval_end, horizon_h=HORIZON_H)

    @task(outlets=[FORECASTS], trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
    def forecasts_updated(results: list[dict[str, Any]]) -> dict[str, Any]:
        return {"kinds": [r["kind"] for r in results if r]}

    @task
    def all_kinds_forecast() -> None:
        """A leaf that needs every kind: one failed kind fails the run (visible), while
        ``forecasts_updated`` still announces the others."""

    forecasts = forecast.expand(kind=kinds_with_model())
    forecasts_updated(forecasts)
    forecasts >> all_kinds_forecast()


forecast_dag = ecodemo_forecast()
