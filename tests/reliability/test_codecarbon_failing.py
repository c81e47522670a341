"""CodeCarbon unavailable (not importable) or failing in its constructor: the measured stage
still completes and its compute_runs rows say "not measured" with NULL energy, never 0.

(A failure inside ``stop_task`` and an unwritable output directory are covered in
tests/integration/test_tracker.py.)
"""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

from ecodemo.config import Settings
from ecodemo.sensors.snapshot import ingest_snapshot
from tests.integration.cli_helpers import cli_env

RUNS = ("SELECT energy_kwh, emissions_kg, cpu_energy_kwh, measurement_method, status, duration_s "
        "FROM compute_runs WHERE stage = 'ingest'")

# The real ingest stage (bundled snapshot, one tracked run per file) in a process where
# ``import codecarbon`` fails, as on an installation without it.
CHILD = """
import json, sys
sys.modules["codecarbon"] = None  # makes `import codecarbon` raise ImportError
from pathlib import Path
from pydantic import SecretStr
from ecodemo.config import Settings
from ecodemo.sensors.snapshot import ingest_snapshot
settings = Settings(database_url=SecretStr(sys.argv[1]), state_dir=Path(sys.argv[2]))
print(json.dumps(ingest_snapshot(settings, echo=lambda _m: None, measure=True)))
"""


def _assert_stage_done_without_energy(db_url: str, reads: int, why: str) -> None:
    assert reads > 0
    with psycopg.connect(db_url) as conn:
        runs = conn.execute(RUNS).fetchall()
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
    assert stored > 0
    assert runs, "the runs are still recorded"
    for kwh, kg, cpu, method, status, duration in runs:
        assert (kwh, kg, cpu) == (None, None, None)  # NULL, never 0
        assert method.startswith("not measured") and why in method, method
        assert status == "ok" and duration is not None and duration >= 0


def test_codecarbon_not_importable(db_url, tmp_path) -> None:
    res = subprocess.run([sys.executable, "-c", CHILD, db_url, str(tmp_path / "state")],
                         env=cli_env(), capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert "energy not measured: CodeCarbon could not start (ModuleNotFoundError" in res.stderr
    _assert_stage_done_without_energy(db_url, out["read"], "ModuleNotFoundError")


def test_codecarbon_constructor_raising(settings: Settings, db_url, monkeypatch) -> None:
    import codecarbon

    def broken(*_a, **_k):
        raise RuntimeError("no CPU information (simulated constructor failure)")

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", broken)
    out = ingest_snapshot(settings, echo=lambda _m: None, measure=True)
    assert out["inserted"] == out["read"]
    _assert_stage_done_without_energy(db_url, out["read"], "RuntimeError")


@pytest.fixture(autouse=True)
def _fresh_meter(monkeypatch) -> None:
    """Each test gets its own process-wide tracker state (the meter caches a failure)."""
    from ecodemo import metering as tracker

    monkeypatch.setattr(tracker, "_METER", tracker._Meter())
