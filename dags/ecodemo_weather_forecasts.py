"""ecodemo_weather_forecasts: keep the weather forecasts as issued backfilled, daily.

Wiring only: each task is one call into ``ecodemo.pipeline``; ecodemo is imported inside tasks.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, task
from ecodemo_dag_common import DEFAULT_ARGS, START_DATE, TAGS, TIMEZONE, settings

DOC = """
### Weather forecasts as issued (daily)

The models read, for each target hour, the weather forecast that was known at the issue time
(`weather_forecasts`). The hourly ingest keeps every forecast it fetches from Open-Meteo as
issued; a forecast it did not fetch (Airflow down, the weeks before a deployment) is lost to
training and backtests. This DAG fills those days from Open-Meteo's **Previous Runs API**
(what the model forecast 1 and 2 days before each hour): one mapped task per enabled
`open_meteo` source of the catalogue.

A scheduled run resumes each station after its last backfilled hour, up to the last day of its
**data interval** (a new station: the source's `backfill_days`), so a day missed is filled the
next morning and an up-to-date station asks for nothing. A manual rerun or an Airflow backfill
refetches exactly its interval's days (Previous Runs data starts in January 2024). Issues
already stored are never overwritten: a rerun writes nothing. Every task is measured with
CodeCarbon as an `ingest` row in `compute_runs` (estimated energy on machines without RAPL
counters; the row says how). By hand: `ecodemo ingest open-meteo-previous-runs`.

Settings come from the environment (`ECODEMO_DATABASE_URL`, `ECODEMO_SENSORS_DIR`, ...).
"""


@dag(
    dag_id="ecodemo_weather_forecasts",
    # Daily after Open-Meteo's overnight runs are out: [06:15, 06:15 next day) Paris time.
    schedule=CronDataIntervalTimetable("15 6 * * *", timezone=TIMEZONE),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "ingest", "weather"],
    doc_md=DOC,
)
def ecodemo_weather_forecasts() -> None:
    @task
    def weather_sources() -> list[str]:
        from ecodemo import pipeline

        return pipeline.weather_forecast_sources(settings())

    @task(max_active_tis_per_dagrun=2)
    def backfill(source: str, data_interval_start: Any = None, data_interval_end: Any = None,
                 dag_run: Any = None) -> dict[str, Any]:
        from ecodemo import pipeline

        # Scheduled runs resume after each station's last backfilled hour (missed days are
        # filled); a manual rerun or backfill refetches exactly its interval's days.
        run_type = getattr(dag_run, "run_type", None)
        resume = getattr(run_type, "value", run_type) == "scheduled"
        return pipeline.backfill_weather_forecasts(settings(), source, data_interval_start,
                                                   data_interval_end, resume=resume)

    backfill.expand(source=weather_sources())


weather_forecasts_dag = ecodemo_weather_forecasts()
