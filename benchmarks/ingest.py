"""Ingestion throughput on the Paris bike counters file, side by side with two references.

Usage: ``python benchmarks/ingest.py [--data DIR] [--executemany-sample N] [--repeat K]
[--compare-with OLD_INGEST]``

Starts a fresh embedded PostgreSQL (the same wheel ecodemo uses by default) in a temporary
directory, registers ``sites.csv`` and prints, for the same 460,879 rows:

* ecodemo first ingest: ``ingest_csv`` end to end (gzip file -> validated -> committed rows);
* ecodemo re-ingest of the unchanged file (every row compared, nothing written);
* raw binary COPY, no validation: the rows already parsed and packed in memory, COPYed in one
  transaction into an empty table with the same columns and primary key as ``readings``;
* plain psycopg ``executemany`` INSERT into the same kind of table, on the first N rows
  (default 50,000) and extrapolated to rows/s (it is too slow to run on everything).

``--compare-with`` also runs ``ingest_csv`` of another version of ``ecodemo/store/ingest/`` (a
copy of the package folder, e.g. ``git archive main src/ecodemo/store/ingest | tar -x -C /tmp``,
or a single-file ``ingest.py`` from before the split), under the same load.
With ``--repeat K`` each measure runs K times (fresh tables each time) and the median is shown:
the machine is shared, so single runs are noisy. Targets (issue 2): ecodemo >= 1,000,000 rows/s,
>= 1/3 of raw COPY, >= 10x executemany; re-ingest at least as fast as the first ingest.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.conninfo import make_conninfo

from ecodemo.store import migrate
from ecodemo.store.connection import _start_embedded
from ecodemo.store.ingest import (
    ingest_csv,
    iter_csv_batches,
    load_sensors,
    readings_payload,
    validate,
)
from ecodemo.store.sites import register_sites_csv

BIKE_FILE = "transport_paris_bike_counters_hourly.csv.gz"
REFERENCE_DDL = """
CREATE TABLE {name} (
    sensor_id text NOT NULL, ts timestamptz NOT NULL, value double precision NOT NULL,
    quality_flags smallint NOT NULL DEFAULT 0, ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor_id, ts))
"""


def _fresh_db(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    return make_conninfo(admin_url, dbname=name)


def bench_ecodemo(url: str, data: Path, ingest: Callable[..., Any] = ingest_csv
                  ) -> tuple[float, float, int]:
    """(first ingest s, re-ingest s, rows) on a freshly migrated database."""
    migrate.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        register_sites_csv(conn, data / "sites.csv")
        t0 = time.perf_counter()
        first = ingest(conn, data / BIKE_FILE)
        t1 = time.perf_counter()
        again = ingest(conn, data / BIKE_FILE)
        t2 = time.perf_counter()
        n = conn.execute("SELECT count(*) FROM readings").fetchone()[0]  # type: ignore[index]
    assert first.inserted == n and first.quarantined == 0, first
    assert again.unchanged == n and again.inserted == again.updated == 0, again
    return t1 - t0, t2 - t1, n


def bench_raw_copy(url: str, payload: bytes, n: int) -> float:
    """Seconds to COPY a pre-built binary payload into an empty table with readings' key."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_copy")
        conn.execute(REFERENCE_DDL.format(name="raw_copy"))
        t0 = time.perf_counter()
        with conn.transaction(), conn.cursor().copy(
            "COPY raw_copy (sensor_id, ts, value, quality_flags) FROM STDIN (FORMAT BINARY)"
        ) as cp:
            cp.write(payload)
        seconds = time.perf_counter() - t0
        got = conn.execute("SELECT count(*) FROM raw_copy").fetchone()[0]  # type: ignore[index]
    assert got == n
    return seconds


def bench_copy_no_key(url: str, payload: bytes) -> float:
    """Seconds to COPY the same payload into an UNLOGGED table without any key or index."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_nokey")
        conn.execute(REFERENCE_DDL.format(name="raw_nokey").replace("CREATE TABLE",
                     "CREATE UNLOGGED TABLE").replace(",\n    PRIMARY KEY (sensor_id, ts))", ")"))
        t0 = time.perf_counter()
        with conn.transaction(), conn.cursor().copy(
            "COPY raw_nokey (sensor_id, ts, value, quality_flags) FROM STDIN (FORMAT BINARY)"
        ) as cp:
            cp.write(payload)
        return time.perf_counter() - t0


def _load_module(path: Path) -> Any:
    """Another version of the ingestion: a copy of the ``ecodemo/store/ingest/`` package folder,
    or a single-module ``ingest.py`` (versions before the package split)."""
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(
            "ecodemo_ingest_compared", path / "__init__.py", submodule_search_locations=[str(path)])
    else:
        spec = importlib.util.spec_from_file_location("ecodemo_ingest_compared", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def bench_executemany(url: str, rows: list[tuple[object, ...]]) -> float:
    """Seconds for ``executemany`` of plain INSERTs of ``rows`` (one transaction)."""
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS plain_insert")
        conn.execute(REFERENCE_DDL.format(name="plain_insert"))
        conn.commit()
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO plain_insert (sensor_id, ts, value, quality_flags) "
                "VALUES (%s, %s, %s, %s)", rows)
        conn.commit()
        return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(
                            os.environ.get("ECODEMO_DEV_DATA_DIR")
                            or Path(__file__).resolve().parents[1].parent / "shared" / "data"),
                        help="folder with sites.csv and the Paris bike counters file")
    parser.add_argument("--executemany-sample", type=int, default=50_000,
                        help="rows used for the executemany reference (extrapolated)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (median shown)")
    parser.add_argument("--compare-with", type=Path, default=None,
                        help="another version of ecodemo/store/ingest/ (folder) or of the "
                             "old single-file ingest.py to time as well")
    args = parser.parse_args()
    if not (args.data / BIKE_FILE).is_file():
        print(f"missing {args.data / BIKE_FILE}; pass --data", file=sys.stderr)
        return 2
    warnings.simplefilter("ignore")
    state = Path(tempfile.mkdtemp(prefix="ecodemo-bench-"))
    # atexit runs last-registered first: this removal runs after the wheel has stopped the server
    atexit.register(shutil.rmtree, state, ignore_errors=True)
    admin_url = make_conninfo(_start_embedded(state), dbname="postgres")

    old = _load_module(args.compare_with) if args.compare_with else None
    first_s, again_s, copy_s, nokey_s, many_s = [], [], [], [], []
    old_first, old_again = [], []
    n = 0
    for k in range(args.repeat):
        if old is not None:
            f, a, _ = bench_ecodemo(_fresh_db(admin_url, f"bench_old_{k}"), args.data,
                                    old.ingest_csv)
            old_first.append(f)
            old_again.append(a)
        url = _fresh_db(admin_url, f"bench_{k}")
        f, a, n = bench_ecodemo(url, args.data)
        first_s.append(f)
        again_s.append(a)
        # The references get the same rows, parsed and validated beforehand (not timed).
        with psycopg.connect(url, autocommit=True) as conn:
            sensors = load_sensors(conn)
        table = next(iter_csv_batches(args.data / BIKE_FILE, 10**9))[0]
        batch = validate(table, sensors)
        payload = readings_payload(batch, np.arange(batch.n_good))
        copy_s.append(bench_raw_copy(url, payload, batch.n_good))
        nokey_s.append(bench_copy_no_key(url, payload))
        m = min(args.executemany_sample, batch.n_good)
        step = max(batch.n_good // m, 1)  # a sample spread over every sensor
        sample = [
            (batch.sensor_ids[int(batch.idx[i]) - 1],
             np.datetime64(int(batch.ts_us[i]), "us").astype(object).isoformat() + "+00:00",
             float(batch.value[i]), int(batch.flags[i]))
            for i in range(0, batch.n_good, step)[:m]
        ]
        many_s.append(bench_executemany(url, sample) * batch.n_good / len(sample))

    def rate(seconds: list[float]) -> float:
        return n / statistics.median(seconds)

    eco, re_eco, raw, many = rate(first_s), rate(again_s), rate(copy_s), rate(many_s)
    with psycopg.connect(admin_url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    print(f"ingest benchmark: {n:,} rows of {BIKE_FILE}, median of {args.repeat} run(s)")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, embedded PostgreSQL {version} (default settings); "
          f"load average {load} (the cores are shared: figures vary from run to run)")
    print()
    print(f"{'method':58s} {'rows/s':>12s} {'seconds':>8s}")
    lines = [
        ("ecodemo ingest_csv, first ingest (file -> committed)", eco),
        ("ecodemo ingest_csv, re-ingest of unchanged data", re_eco),
        ("raw binary COPY, no validation (in-memory rows, same PK)", raw),
        ("  for scale: same COPY into an UNLOGGED table with no key", rate(nokey_s)),
        (f"psycopg executemany INSERT ({len(sample):,}-row sample, extrapolated)", many),
    ]
    if old is not None:
        lines += [(f"compared version ({args.compare_with.name}), first ingest", rate(old_first)),
                  (f"compared version ({args.compare_with.name}), re-ingest", rate(old_again))]
    for label, r in lines:
        print(f"{label:58s} {r:12,.0f} {n / r:8.2f}")
    print()
    print("targets:")
    print(f"  ecodemo >= 1,000,000 rows/s     : {eco:,.0f} rows/s "
          f"-> {'met' if eco >= 1e6 else 'NOT met'}")
    print(f"  ecodemo >= 1/3 of raw COPY      : {eco / raw:.2f} of raw COPY "
          f"-> {'met' if eco >= raw / 3 else 'NOT met'}")
    print(f"  ecodemo >= 10x executemany      : {eco / many:.1f}x "
          f"-> {'met' if eco >= 10 * many else 'NOT met'}")
    print(f"  re-ingest >= first ingest       : {re_eco / eco:.2f}x "
          f"-> {'met' if re_eco >= eco else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
