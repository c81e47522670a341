"""Two different files with conflicting values for the same rows, ingested at the same time
(one sensor-major, one time-major, so their batches collide):
every row ends with the value of the file whose batch wrote it last, no deadlock surfaces,
nothing is lost or duplicated."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import psycopg

from ecodemo.store.ingest import IngestCounts, ingest_csv
from ecodemo.store.sites import register_sites_csv

N_SENSORS = 20
N_HOURS = 4_000            # 80,000 rows per file
BATCH_ROWS = 1_000
OFFSET_B = 10_000.0        # file B's correction: every value differs from file A's


def _write_files(folder: Path) -> tuple[Path, Path, Path]:
    sites = folder / "sites.csv"
    sites.write_text("site_id,name,kind,latitude,longitude,unit\n" + "".join(
        f"c-{i:03d},Counter {i},bike,48.8,2.3,bicycles/h\n" for i in range(N_SENSORS)))
    hours = np.datetime64("2024-01-01T00", "h") + np.arange(N_HOURS)
    stamps = np.datetime_as_string(hours, unit="s", timezone="UTC").tolist()
    rng = np.random.default_rng(11)
    base = rng.integers(0, 2_000, size=(N_SENSORS, N_HOURS))
    a, b = folder / "a.csv", folder / "b.csv"
    # A is sensor-major (one sensor per batch), B time-major (every sensor in each batch), so
    # their batches keep colliding on the same rows while both run.
    with open(a, "w") as fh:
        fh.write("timestamp,site_id,value,unit\n")
        for i in range(N_SENSORS):
            fh.writelines(f"{t},c-{i:03d},{base[i, h]},bicycles/h\n"
                          for h, t in enumerate(stamps))
    with open(b, "w") as fh:
        fh.write("timestamp,site_id,value,unit\n")
        for h, t in enumerate(stamps):
            fh.writelines(f"{t},c-{i:03d},{base[i, h] + OFFSET_B},bicycles/h\n"
                          for i in range(N_SENSORS))
    return sites, a, b


def test_conflicting_files_at_once_last_writer_wins(db_url: str, tmp_path: Path) -> None:
    sites, file_a, file_b = _write_files(tmp_path)
    with psycopg.connect(db_url, autocommit=True) as conn:
        register_sites_csv(conn, sites)
    n = N_SENSORS * N_HOURS
    start = threading.Barrier(2)
    # per file: the monotonic time at which each batch had committed (progress runs after it)
    done_at: dict[str, list[float]] = {"a": [], "b": []}
    begun_at: dict[str, float] = {}
    results: dict[str, IngestCounts | BaseException] = {}

    def run(name: str, path: Path) -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                start.wait()
                begun_at[name] = time.monotonic()
                results[name] = ingest_csv(
                    conn, path, batch_rows=BATCH_ROWS,
                    progress=lambda _f, _c: done_at[name].append(time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - asserted below: nothing may surface
            results[name] = exc

    threads = [threading.Thread(target=run, args=("a", file_a)),
               threading.Thread(target=run, args=("b", file_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    ca, cb = results["a"], results["b"]
    assert isinstance(ca, IngestCounts), repr(ca)   # no deadlock or unique violation surfaced
    assert isinstance(cb, IngestCounts), repr(cb)
    for c in (ca, cb):
        assert c.read == n == c.inserted + c.updated + c.unchanged + c.quarantined
        assert c.unchanged == 0 and c.quarantined == 0
    # every row was written by both files: inserted once, then updated once
    assert ca.inserted + cb.inserted == n
    assert ca.updated + cb.updated == n

    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT sensor_id, ts, value FROM readings "
                            "ORDER BY sensor_id, ts").fetchall()
    assert len(rows) == n  # no loss, no duplicate
    values = np.array([r[2] for r in rows]).reshape(N_SENSORS, N_HOURS)
    # file A's value is below OFFSET_B, file B's above: who wrote each row last
    b_last = values >= OFFSET_B
    a_vals = values - np.where(b_last, OFFSET_B, 0.0)
    # base values are identical in both files, so the de-offset grid is the same everywhere
    assert np.array_equal(a_vals, np.round(a_vals))

    # A row's writes happen inside one batch of each file: batch k of a file ran between the
    # commit of batch k-1 (or the start) and its own commit. Where the two intervals do not
    # overlap, the later one must have won; where they overlap, either may have.
    def intervals(name: str) -> np.ndarray:
        ends = np.array(done_at[name])
        starts = np.r_[begun_at[name], ends[:-1]]
        return np.stack([starts, ends], axis=1)

    ia, ib = intervals("a"), intervals("b")
    assert len(ia) == len(ib) == n // BATCH_ROWS
    row_in_a = np.arange(N_SENSORS)[:, None] * N_HOURS + np.arange(N_HOURS)[None, :]
    row_in_b = np.arange(N_HOURS)[None, :] * N_SENSORS + np.arange(N_SENSORS)[:, None]
    wa, wb = ia[row_in_a // BATCH_ROWS], ib[row_in_b // BATCH_ROWS]
    a_surely_last = wb[..., 1] < wa[..., 0]
    b_surely_last = wa[..., 1] < wb[..., 0]
    assert not (a_surely_last & b_last).any()
    assert not (b_surely_last & ~b_last).any()
    decided = int(a_surely_last.sum() + b_surely_last.sum())
    print(f"{decided:,} of {n:,} rows had a certain last writer; A won {int((~b_last).sum()):,}, "
          f"B won {int(b_last.sum()):,}")
    assert decided > 0
