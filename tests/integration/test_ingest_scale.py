"""Ingesting a 1,000,000-row file keeps memory bounded (measured on a real child process)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest

from tests.child_peak import run_measuring_peak

N_SENSORS = 50
N_HOURS = 20_000          # 50 sensors x 20,000 hours = 1,000,000 rows
N_BAD = 100               # rows with a value that is not a number: quarantined
MAX_RSS_BYTES = 1 << 30   # 1 GiB

CHILD = """
import json, sys
from pathlib import Path
import psycopg
from ecodemo.store.ingest import ingest_csv
from ecodemo.store.sites import register_sites_csv
url, sites, data = sys.argv[1:4]
with psycopg.connect(url, autocommit=True) as conn:
    register_sites_csv(conn, Path(sites))
    counts = ingest_csv(conn, Path(data))
print(json.dumps(counts.as_dict()))
"""


def _generate(tmp_path: Path) -> tuple[Path, Path]:
    sites = tmp_path / "sites.csv"
    sites.write_text("site_id,name,kind,latitude,longitude,unit\n" + "".join(
        f"gen-{i:03d},Generated {i},bike,48.8,2.3,bicycles/h\n" for i in range(N_SENSORS)))
    hours = np.datetime64("2020-01-01T00", "h") + np.arange(N_HOURS)
    stamps = np.datetime_as_string(hours, unit="s", timezone="UTC").tolist()
    rng = np.random.default_rng(7)
    bad = set(rng.choice(N_SENSORS * N_HOURS, size=N_BAD, replace=False).tolist())
    data = tmp_path / "million.csv"
    with open(data, "w") as fh:
        fh.write("timestamp,site_id,value,unit\n")
        row = 0
        for i in range(N_SENSORS):
            values = rng.integers(0, 500, size=N_HOURS).tolist()
            lines = []
            for t, v in zip(stamps, values, strict=True):
                lines.append(f"{t},gen-{i:03d},{'n/a' if row in bad else v},bicycles/h\n")
                row += 1
            fh.writelines(lines)
    return sites, data


@pytest.mark.slow
def test_million_row_file_stays_under_1_gib(db_url, tmp_path) -> None:
    sites, data = _generate(tmp_path)
    out, peak = run_measuring_peak(CHILD, db_url, str(sites), str(data))
    counts = json.loads(out.strip().splitlines()[-1])
    print(f"peak RSS of the ingesting process: {peak / 2**20:.0f} MiB")
    assert peak < MAX_RSS_BYTES, f"peak RSS {peak / 2**20:.0f} MiB"
    assert counts["read"] == N_SENSORS * N_HOURS
    assert counts["quarantined"] == N_BAD
    assert counts["inserted"] == N_SENSORS * N_HOURS - N_BAD
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT count(*), count(DISTINCT sensor_id) FROM readings").fetchone()
        quarantined = conn.execute("SELECT count(*) FROM quarantine").fetchone()
    assert stored == (N_SENSORS * N_HOURS - N_BAD, N_SENSORS)
    assert quarantined == (N_BAD,)
