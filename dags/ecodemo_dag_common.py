"""What the ecodemo DAG files share: default arguments, schedules' timezone, Assets, settings.

Not a DAG file (listed in .airflowignore). Parsing must stay light: Airflow and pendulum only;
ecodemo (pandas, LightGBM, CodeCarbon...) is imported inside the task functions.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import Asset

if TYPE_CHECKING:
    from ecodemo.config import Settings

TIMEZONE = "Europe/Paris"
# A fixed, timezone-aware start in the past; with catchup=False only the latest interval runs.
START_DATE = pendulum.datetime(2025, 1, 1, tz=TIMEZONE)
TAGS = ["ecodemo"]

# Every task: 3 retries after 1, 2, 4 minutes (exponential, capped at 30 minutes): enough for a
# flaky open-data portal or a database restart, short enough to catch the next hourly run.
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "ecodemo",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=2),
}

# Assets: what each DAG produces; the publish DAG (and the train DAG) are scheduled on them.
READINGS = Asset(name="ecodemo_readings", uri="ecodemo://store/readings", group="ecodemo")
FORECASTS = Asset(name="ecodemo_forecasts", uri="ecodemo://store/forecasts", group="ecodemo")
EVALUATIONS = Asset(name="ecodemo_evaluations", uri="ecodemo://store/evaluations",
                    group="ecodemo")
MODELS = Asset(name="ecodemo_models", uri="ecodemo://store/models", group="ecodemo")


def settings() -> Settings:
    """ecodemo settings from the task's environment (ECODEMO_*), built inside the task."""
    from ecodemo.config import load_settings

    return load_settings()
