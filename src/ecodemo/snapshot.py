"""Where the bundled real data snapshot lives (``sensors/snapshot`` in the repository).

Installed from a wheel, the snapshot ships inside the package as ``ecodemo/_sensors``; from a
checkout (editable install) it is the repository's top-level ``sensors/`` folder.
"""

from __future__ import annotations

from pathlib import Path

from ecodemo.errors import ConfigError


def sensors_dir() -> Path:
    """The folder holding the sensor catalogue and ``snapshot/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_sensors", here.parents[1] / "sensors", Path.cwd() / "sensors"):
        if (candidate / "snapshot" / "sites.csv").is_file():
            return candidate
    raise ConfigError("bundled snapshot not found (expected sensors/snapshot/sites.csv)")


def snapshot_dir() -> Path:
    return sensors_dir() / "snapshot"


# Series files of the snapshot, in ingestion order, and the weather station they pair with.
SERIES_FILES = ("renewable_eco2mix.csv.gz", "transport_bike.csv.gz", "transport_road.csv.gz")
WEATHER_FILE = "weather_paris_orly.csv"
SITES_FILE = "sites.csv"
