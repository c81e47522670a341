"""Where the bundled real data snapshot lives (``sensors/snapshot`` in the repository).

Installed from a wheel, the snapshot ships inside the package as ``ecodemo/_sensors``; from a
checkout (editable install) it is the repository's top-level ``sensors/`` folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from ecodemo.errors import ConfigError


def sensors_dir() -> Path:
    """The folder holding the sensor catalogue and ``snapshot/``.

    ``ECODEMO_SENSORS_DIR`` wins (a deployment mounts its own catalogue there, e.g. the compose
    file's ./sensors); then a repository checkout; then the copy bundled in the wheel.
    """
    here = Path(__file__).resolve().parent
    override = os.environ.get("ECODEMO_SENSORS_DIR")
    if override:
        if not (Path(override) / "catalogue.yaml").is_file():
            raise ConfigError(f"ECODEMO_SENSORS_DIR={override}: no catalogue.yaml there")
        return Path(override)
    for candidate in (here.parents[1] / "sensors", Path.cwd() / "sensors", here / "_sensors"):
        if (candidate / "snapshot" / "sites.csv").is_file():
            return candidate
    raise ConfigError("bundled snapshot not found (expected sensors/snapshot/sites.csv)")


def snapshot_dir() -> Path:
    return sensors_dir() / "snapshot"


# Series files of the snapshot, in ingestion order, and the weather station they pair with.
SERIES_FILES = ("renewable_eco2mix.csv.gz", "transport_bike.csv.gz", "transport_road.csv.gz")
WEATHER_FILE = "weather_paris_orly.csv"
SITES_FILE = "sites.csv"
