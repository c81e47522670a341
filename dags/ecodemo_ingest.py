"""ecodemo_ingest: collect every enabled source each hour into the store (emits the readings Asset).

Wiring only: each task is one call into ``ecodemo.pipeline``; ecodemo is imported inside tasks.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, TriggerRule, dag, task
from ecodemo_dag_common import DEFAULT_ARGS, READINGS, START_DATE, TAGS, TIMEZONE, settings

DOC = """
### Ingest (hourly)

One mapped task per enabled one-shot source of the sensor catalogue (`catalogue.yaml` in
`ECODEMO_SENSORS_DIR`; MQTT sources run as a subscriber instead), and nothing else: the bundled
demo snapshot is ingested only when the catalogue enables a `snapshot` source (once per content
version, then skipped at once).
Each task is scoped to this run's **data interval**: a scheduled run fetches, per sensor, what
came in after its last stored reading up to the interval end (open data is often published
late: a strict one-hour window would lose what arrives late); a manual rerun or a backfill
refetches exactly its interval. Readings are upserted keyed by (sensor, time): rerunning an
interval changes nothing, a corrected value updates its row, and rows that fail validation go
to `quarantine` with their reason. Every task is measured with
CodeCarbon as an `ingest` row in `compute_runs` (energy is estimated on machines without RAPL
counters; the row says how).

When at least one source succeeded, `readings_updated` emits the `ecodemo_readings` Asset, which
the training DAG watches; `all_sources_ingested` fails the run when any source failed.
Trigger with conf `{"sources": ["drop"]}` to run only some sources.

Settings come from the environment (`ECODEMO_DATABASE_URL`, ...): see the README.
"""


@dag(
    dag_id="ecodemo_ingest",
    # Data intervals between consecutive cron times: [10:00, 11:00) runs at 11:00 Paris time.
    schedule=CronDataIntervalTimetable("0 * * * *", timezone=TIMEZONE),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "ingest"],
    doc_md=DOC,
    params={"sources": Param(None, type=["null", "array"],
                             description="Only these sources (default: every enabled one).")},
)
def ecodemo_ingest() -> None:
    @task
    def enabled_sources(params: dict[str, Any] | None = None) -> list[str]:
        from ecodemo import pipeline

        available = pipeline.sources(settings())
        wanted = (params or {}).get("sources")
        if not wanted:
            return available
        unknown = sorted(set(wanted) - set(available))
        if unknown:
            raise ValueError(f"unknown or disabled source(s): {', '.join(unknown)}")
        return [s for s in available if s in wanted]

    @task(max_active_tis_per_dagrun=2)
    def ingest(source: str, data_interval_start: Any = None, data_interval_end: Any = None,
               dag_run: Any = None) -> dict[str, Any]:
        from ecodemo import pipeline

        # Scheduled runs resume after each sensor's last reading (late data is not lost);
        # a manual rerun or backfill refetches exactly its interval.
        run_type = getattr(dag_run, "run_type", None)
        resume = getattr(run_type, "value", run_type) == "scheduled"
        return pipeline.ingest(settings(), source, data_interval_start, data_interval_end,
                               resume=resume)

    @task(outlets=[READINGS], trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
    def readings_updated(results: list[dict[str, Any]]) -> dict[str, Any]:
        ok = [r for r in results if r]
        return {"sources": [r.get("source") for r in ok],
                "inserted": sum(int(r.get("inserted", 0) or 0) for r in ok),
                "updated": sum(int(r.get("updated", 0) or 0) for r in ok)}

    @task
    def all_sources_ingested() -> None:
        """A leaf that needs every source: a failed source fails the run (visible), while
        ``readings_updated`` above still announces what the other sources brought."""

    ingested = ingest.expand(source=enabled_sources())
    readings_updated(ingested)
    ingested >> all_sources_ingested()


ingest_dag = ecodemo_ingest()
