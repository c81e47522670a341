"""Where the sensor catalogue and the bundled snapshot live on disk.

Installed from a wheel, the ``sensors/`` folder ships inside the package as ``ecodemo/_sensors``;
from a checkout (editable install) it is the repository's top-level ``sensors/`` folder. Kept in
the base layer so the catalogue (``sensors``) finds its file without importing the code that
ingests or purges the snapshot.
"""

from __future__ import annotations

import os
from pathlib import Path

from ecodemo.errors import ConfigError

#: The snapshot's sites file: its presence marks a folder as holding the snapshot.
SITES_FILE = "sites.csv"


def _bundled_dir() -> Path:
    """The sensors folder shipped with ecodemo: a repository checkout, then the wheel's copy."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[1] / "sensors", Path.cwd() / "sensors", here / "_sensors"):
        if (candidate / "snapshot" / SITES_FILE).is_file():
            return candidate
    raise ConfigError("bundled snapshot not found (expected sensors/snapshot/sites.csv)")


def sensors_dir() -> Path:
    """The folder holding the sensor catalogue.

    ``ECODEMO_SENSORS_DIR`` wins (a deployment mounts its own catalogue there, e.g. the compose
    file's ./sensors); then a repository checkout; then the copy bundled in the wheel.
    """
    override = os.environ.get("ECODEMO_SENSORS_DIR")
    if override:
        if not (Path(override) / "catalogue.yaml").is_file():
            raise ConfigError(f"ECODEMO_SENSORS_DIR={override}: no catalogue.yaml there")
        return Path(override)
    return _bundled_dir()


def snapshot_dir() -> Path:
    """The bundled snapshot: ``ECODEMO_SENSORS_DIR/snapshot`` when that folder has one, else the
    copy shipped with ecodemo (so ``ecodemo demo`` runs beside a deployment's own catalogue)."""
    override = os.environ.get("ECODEMO_SENSORS_DIR")
    if override and (Path(override) / "snapshot" / SITES_FILE).is_file():
        return Path(override) / "snapshot"
    return _bundled_dir() / "snapshot"
