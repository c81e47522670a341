"""The database stopped (power-cut style) in the middle of an ingestion, restarted, retried:
the final state equals that of a clean run. No reading lost, none duplicated, quarantine rows
not duplicated, and the failure surfaces as one line."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import psycopg
import pytest

from ecodemo.errors import DatabaseError
from ecodemo.store.ingest import IngestCounts, ingest_csv
from ecodemo.store.sites import register_sites_csv
from tests.reliability.conftest import DedicatedServer

N_SENSORS = 40
N_HOURS = 5_000            # 40 x 5,000 = 200,000 rows
N_BAD = 60                 # values that are not numbers: quarantined
BATCH_ROWS = 2_000         # 100 transactions: the outage lands in the middle of one
STOP_AFTER_BATCHES = 30


def write_fleet(folder: Path, seed: int = 3) -> tuple[Path, Path]:
    """A sites file and a long-format readings file with a few unparseable values."""
    sites = folder / "sites.csv"
    sites.write_text("site_id,name,kind,latitude,longitude,unit\n" + "".join(
        f"f-{i:03d},Fleet {i},bike,48.8,2.3,bicycles/h\n" for i in range(N_SENSORS)))
    hours = np.datetime64("2023-01-01T00", "h") + np.arange(N_HOURS)
    stamps = np.datetime_as_string(hours, unit="s", timezone="UTC").tolist()
    rng = np.random.default_rng(seed)
    bad = set(rng.choice(N_SENSORS * N_HOURS, size=N_BAD, replace=False).tolist())
    data = folder / "fleet.csv"
    with open(data, "w") as fh:
        fh.write("timestamp,site_id,value,unit\n")
        row = 0
        for i in range(N_SENSORS):
            values = np.round(rng.gamma(2.0, 40.0, size=N_HOURS), 3).tolist()
            lines = []
            for t, v in zip(stamps, values, strict=True):
                lines.append(f"{t},f-{i:03d},{'#N/A' if row in bad else v},bicycles/h\n")
                row += 1
            fh.writelines(lines)
    return sites, data


def state_of(url: str) -> tuple[list[tuple], list[tuple]]:
    """Every reading and every quarantine row (without ids and times), sorted."""
    with psycopg.connect(url) as conn:
        readings = conn.execute(
            "SELECT sensor_id, ts, value, quality_flags FROM readings ORDER BY sensor_id, ts"
        ).fetchall()
        quarantine = conn.execute(
            "SELECT source, line_no, sensor_id, raw, reason FROM quarantine "
            "ORDER BY line_no, raw").fetchall()
    return readings, quarantine


@pytest.mark.slow
def test_database_crash_mid_ingest_then_retry_equals_clean_run(
        dedicated_server: DedicatedServer, tmp_path: Path) -> None:
    sites, data = write_fleet(tmp_path)
    total = N_SENSORS * N_HOURS

    clean_url = dedicated_server.new_database("clean")
    with psycopg.connect(clean_url, autocommit=True) as conn:
        register_sites_csv(conn, sites)
        clean_counts = ingest_csv(conn, data, batch_rows=BATCH_ROWS)
    assert (clean_counts.inserted, clean_counts.quarantined) == (total - N_BAD, N_BAD)

    url = dedicated_server.new_database("faulty")
    with psycopg.connect(url, autocommit=True) as conn:
        register_sites_csv(conn, sites)

    reached = threading.Event()
    outcome: dict[str, object] = {}

    def progress(_fraction: float, counts: IngestCounts) -> None:
        if counts.read >= STOP_AFTER_BATCHES * BATCH_ROWS:
            reached.set()

    def ingest() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                outcome["counts"] = ingest_csv(conn, data, batch_rows=BATCH_ROWS,
                                               progress=progress)
        except BaseException as exc:  # noqa: BLE001 - inspected below
            outcome["error"] = exc
        finally:
            reached.set()

    worker = threading.Thread(target=ingest)
    worker.start()
    assert reached.wait(120)
    dedicated_server.crash()  # while the worker is writing batch ~31
    worker.join(120)
    assert not worker.is_alive()

    err = outcome.get("error")
    assert "counts" not in outcome, "the ingestion finished before the crash: make it longer"
    assert isinstance(err, DatabaseError), repr(err)
    message = str(err)
    assert "\n" not in message and str(data.resolve()) in message
    print(f"the interrupted ingestion raised: {type(err).__name__}: {message}")

    dedicated_server.start()
    partial, _ = state_of(url)
    # committed batches survived the crash (crash recovery); the interrupted one rolled back
    assert STOP_AFTER_BATCHES * BATCH_ROWS - N_BAD <= len(partial) < total - N_BAD
    with psycopg.connect(url, autocommit=True) as conn:
        retry = ingest_csv(conn, data, batch_rows=BATCH_ROWS)
    assert retry.read == total
    assert retry.unchanged == len(partial) and retry.updated == 0
    assert retry.inserted == total - N_BAD - len(partial)
    assert retry.quarantined == N_BAD

    readings, quarantine = state_of(url)
    clean_readings, clean_quarantine = state_of(clean_url)
    assert len(readings) == total - N_BAD
    assert readings == clean_readings          # same rows, same values, same flags
    assert quarantine == clean_quarantine      # each rejected row once, not twice
    assert len(quarantine) == N_BAD
