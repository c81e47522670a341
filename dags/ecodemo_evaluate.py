"""ecodemo_evaluate: daily accuracy of past forecasts as issued, and benefit versus cost.

Wiring only: each task is one call into ``ecodemo.pipeline``; ecodemo is imported inside tasks.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, task
from ecodemo_dag_common import DEFAULT_ARGS, EVALUATIONS, START_DATE, TAGS, TIMEZONE, settings

DOC = """
### Evaluate (daily)

For the day that just ended (the data interval, midnight to midnight Europe/Paris: 23 or 25
hours on DST days), compares the forecasts **as they were issued** with the readings that came
in (`evaluations`, source `live`), and puts the compute energy and CO2 of every ingest, train
and predict run next to the energy and CO2 the forecasts help avoid (`balances`, with the
assumptions stored next to the figures). Idempotent: a rerun rewrites the same rows.

Emits the `ecodemo_evaluations` Asset (the publish DAG listens).
"""


@dag(
    dag_id="ecodemo_evaluate",
    # 02:30 leaves time for the night's late readings before scoring the previous day.
    schedule=CronDataIntervalTimetable("30 2 * * *", timezone=TIMEZONE),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "evaluate"],
    doc_md=DOC,
)
def ecodemo_evaluate() -> None:
    @task(outlets=[EVALUATIONS])
    def evaluate(data_interval_start: Any = None, data_interval_end: Any = None) -> dict[str, Any]:
        from ecodemo import pipeline

        return pipeline.evaluate(settings(), data_interval_start, data_interval_end)

    evaluate()


evaluate_dag = ecodemo_evaluate()
