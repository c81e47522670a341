"""Oversized inputs stay within a memory bound: a 3,000,000-row file and a single 50 MB line.
Peak RSS is measured on the real ingesting child process (its own ``VmHWM``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest

from tests.child_peak import run_measuring_peak

SITES = "site_id,name,kind,latitude,longitude,unit\n" + "".join(
    f"big-{i:03d},Big {i},bike,48.8,2.3,bicycles/h\n" for i in range(100))
MAX_RSS_BYTES = 1 << 30

CHILD = """
import json, sys
from pathlib import Path
import psycopg
from ecodemo.errors import EcodemoError
from ecodemo.store.ingest import ingest_csv
from ecodemo.store.sites import register_sites_csv
url, sites, data = sys.argv[1:4]
with psycopg.connect(url, autocommit=True) as conn:
    register_sites_csv(conn, Path(sites))
    try:
        out = {"counts": ingest_csv(conn, Path(data)).as_dict()}
    except EcodemoError as exc:
        out = {"error": type(exc).__name__, "message": str(exc)}
print(json.dumps(out))
"""


def _ingest_in_child(db_url: str, sites: Path, data: Path) -> tuple[dict, int]:
    """Run the ingestion in a child process; return its JSON result and peak RSS in bytes."""
    out, peak = run_measuring_peak(CHILD, db_url, str(sites), str(data))
    return json.loads(out.strip().splitlines()[-1]), peak


@pytest.mark.slow
def test_three_million_rows_bounded_memory(db_url, tmp_path) -> None:
    sites = tmp_path / "sites.csv"
    sites.write_text(SITES)
    n_hours = 30_000
    hours = np.datetime64("2020-01-01T00", "h") + np.arange(n_hours)
    stamps = np.datetime_as_string(hours, unit="s", timezone="UTC").astype(object)
    data = tmp_path / "three_million.csv"
    rng = np.random.default_rng(5)
    with open(data, "w") as fh:
        fh.write("timestamp,site_id,value,unit\n")
        for i in range(100):
            vals = rng.integers(0, 900, size=n_hours).astype(str).astype(object)
            fh.write("".join(stamps + f",big-{i:03d}," + vals + ",bicycles/h\n"))
    n = 100 * n_hours
    size_mb = data.stat().st_size / 1e6
    result, peak = _ingest_in_child(db_url, sites, data)
    print(f"{n:,} rows ({size_mb:.0f} MB): peak RSS {peak / 2**20:.0f} MiB")
    assert result["counts"]["inserted"] == result["counts"]["read"] == n
    assert peak < MAX_RSS_BYTES, f"peak RSS {peak / 2**20:.0f} MiB"
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == n


def test_single_50_mb_line_is_a_typed_error_with_bounded_memory(db_url, tmp_path) -> None:
    sites = tmp_path / "sites.csv"
    sites.write_text(SITES)
    data = tmp_path / "one_huge_line.csv"
    good = [f"2024-01-01T{h:02d}:00:00Z,big-000,{h},bicycles/h\n" for h in range(24)]
    with open(data, "w") as fh:
        fh.write("timestamp,site_id,value,unit\n")
        fh.writelines(good)
        fh.write("2024-01-02T00:00:00Z,big-000,")
        chunk = "7" * (1 << 20)
        for _ in range(50):
            fh.write(chunk)
        fh.write(",bicycles/h\n")
    size_mb = data.stat().st_size / 1e6
    result, peak = _ingest_in_child(db_url, sites, data)
    print(f"one {size_mb:.0f} MB line: {result}, peak RSS {peak / 2**20:.0f} MiB")
    assert result.get("error") == "InputError", result
    assert "near line" in result["message"] and "\n" not in result["message"]
    assert len(result["message"]) < 1_000  # the line itself is not echoed
    assert peak < 400 * 2**20, f"peak RSS {peak / 2**20:.0f} MiB"
