"""ecodemo_train: weekly, and when enough new data arrived, run the model ladder and train per kind.

Wiring only: each task is one call into ``ecodemo.pipeline``; ecodemo is imported inside tasks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import (
    AssetOrTimeSchedule,
    CronDataIntervalTimetable,
    PokeReturnValue,
    dag,
    task,
)
from ecodemo_dag_common import (
    DEFAULT_ARGS,
    MODELS,
    READINGS,
    START_DATE,
    TAGS,
    TIMEZONE,
    settings,
)

# Training may wait this long after the run was due for a low-carbon moment on the grid.
MAX_WAIT = timedelta(hours=6)
POKE_INTERVAL = timedelta(minutes=15)

DOC = f"""
### Train (weekly, or when enough new data arrived)

Scheduled every Monday at 03:00 Europe/Paris **and** on every update of the `ecodemo_readings`
Asset (the hourly ingest). `kinds_due` decides what to train:

* a weekly or manual run trains every kind that has readings;
* an Asset-triggered run trains only the kinds whose readings ingested since their last model
  reach 5 % of their readings (or that have no model yet), so most hourly triggers end at once
  with nothing to map.

`low_carbon_window` is a sensor in **reschedule** mode (it frees its worker slot between pokes,
every {POKE_INTERVAL.seconds // 60} min): it lets training start when the latest grid carbon
intensity collected in `grid_intensity` (zone `ECODEMO_GRID_ZONE`, default FR: RTE éCO2mix
`taux_co2`, fetched by the sensors' ODRE connector) is among the cleanest 30 % of the last
7 days (or under 30 gCO2e/kWh), or straight away when no recent intensity was collected (it
cannot tell, so it does not wait blind). **Deadline:** {MAX_WAIT.seconds // 3600} h after the
run was due the sensor itself decides to proceed, whatever the grid; its Airflow `timeout` (one
hour later) is only a backstop. The decision and its reason are the sensor's XCom.

Then, per due kind (mapped): `choose_model` backtests the model ladder (baselines, then LightGBM
sizes) and records the cheapest model that does the job; `train_model` trains it on all data,
registers it and promotes it. Both are measured with CodeCarbon (`compute_runs`).
"""


@dag(
    dag_id="ecodemo_train",
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable("0 3 * * 1", timezone=TIMEZONE), assets=READINGS
    ),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "train"],
    doc_md=DOC,
)
def ecodemo_train() -> None:
    @task
    def kinds_due(dag_run: Any = None) -> list[str]:
        from ecodemo import pipeline

        # Only an Asset-triggered run is conditional; weekly and manual runs train everything.
        run_type = getattr(dag_run, "run_type", "manual")
        force = getattr(run_type, "value", run_type) != "asset_triggered"
        due = pipeline.kinds_due_for_training(settings(), force=force)
        for d in due:
            print(f"{d['kind']}: {'due' if d['due'] else 'not due'} ({d['reason']})")
        return [d["kind"] for d in due if d["due"]]

    @task.sensor(poke_interval=POKE_INTERVAL.total_seconds(), mode="reschedule",
                 timeout=(MAX_WAIT + timedelta(hours=1)).total_seconds())
    def low_carbon_window(kinds: list[str], dag_run: Any = None) -> PokeReturnValue:
        if not kinds:
            return PokeReturnValue(is_done=True, xcom_value={"proceed": True,
                                                             "reason": "nothing to train"})
        from ecodemo import pipeline

        decision = pipeline.low_carbon_window(settings(), deadline=dag_run.run_after + MAX_WAIT)
        print(decision["reason"])
        return PokeReturnValue(is_done=bool(decision["proceed"]), xcom_value=decision)

    @task
    def choose_model(kind: str) -> dict[str, Any]:
        from ecodemo import pipeline

        return pipeline.run_ladder(settings(), kind)

    @task(outlets=[MODELS])
    def train_model(choice: dict[str, Any]) -> dict[str, Any]:
        from ecodemo import pipeline

        return pipeline.train(settings(), choice["kind"])

    due = kinds_due()
    chosen = choose_model.expand(kind=due)
    low_carbon_window(due) >> chosen
    train_model.expand(choice=chosen)


train_dag = ecodemo_train()
