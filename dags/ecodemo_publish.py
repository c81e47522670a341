"""ecodemo_publish: dashboards and annotations to Grafana when forecasts or evaluations change.

Wiring only: each task is one call into ``ecodemo.pipeline``; ecodemo is imported inside tasks.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task
from ecodemo_dag_common import DEFAULT_ARGS, EVALUATIONS, FORECASTS, START_DATE, TAGS, settings

DOC = """
### Publish (on new forecasts or evaluations)

Runs when the `ecodemo_forecasts` or `ecodemo_evaluations` Asset is updated. Pushes the
dashboards (JSON as code) and annotations (model promotions, evaluations) to Grafana over its
HTTP API. When `ECODEMO_GRAFANA_URL` is not set, `grafana_configured` short-circuits and the
publish task is **skipped** (not failed): dashboards can still be provisioned from the files in
`dashboards/`. Publishing is idempotent (dashboards are overwritten by uid).
"""


@dag(
    dag_id="ecodemo_publish",
    schedule=(FORECASTS | EVALUATIONS),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "publish"],
    doc_md=DOC,
)
def ecodemo_publish() -> None:
    @task.short_circuit
    def grafana_configured() -> bool:
        from ecodemo import pipeline

        return pipeline.grafana_configured(settings())

    @task
    def publish() -> dict[str, Any]:
        from ecodemo import pipeline

        return pipeline.publish(settings())

    grafana_configured() >> publish()


publish_dag = ecodemo_publish()
