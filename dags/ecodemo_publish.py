"""ecodemo_publish: dashboards and annotations to Grafana when forecasts or evaluations change.

Wiring only: each task is one call into ``ecodemo.pipeline``; ecodemo is imported inside tasks.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task
from ecodemo_dag_common import DEFAULT_ARGS, EVALUATIONS, FORECASTS, START_DATE, TAGS, settings

DOC = """
### Publish (on new forecasts or evaluations)

Runs when the `ecodemo_forecasts` or `ecodemo_evaluations` Asset is updated. Publishes the
dashboards (JSON as code) where the settings say:

- `ECODEMO_GRAFANA_DASHBOARDS_DIR` (what docker compose sets): writes the JSON into the folder
  Grafana's file provider reads (a volume shared with Grafana); Grafana reloads it within 30 s.
  No Grafana credential reaches the tasks.
- `ECODEMO_GRAFANA_URL`: uploads over Grafana's HTTP API with a token, and posts model
  promotions and training runs as annotations.

When neither is set, `grafana_configured` short-circuits and the publish task is **skipped**
(not failed). Publishing is idempotent (files rewritten only when changed; dashboards
overwritten by uid).
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
