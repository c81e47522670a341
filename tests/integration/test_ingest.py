"""Ingestion against real PostgreSQL: idempotence, corrections, quarantine, DST, gzip, races."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import numpy as np
import psycopg
import pytest

from ecodemo.store.ingest import FLAG_DST_REPEATED, FLAG_NEGATIVE_NIGHT, ingest_csv
from ecodemo.store.sites import register_sites_csv
from tests.conftest import SNAPSHOT

# An exception raised inside pyarrow's invalid-row handler (pyarrow decodes a malformed row
# strictly before calling it) is only printed as "Exception ignored": here it fails the test.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

SITES = """site_id,name,kind,latitude,longitude,unit,timezone,capacity
bike-a,Bike A,bike,48.85,2.35,bicycles/h,Europe/Paris,
pv-1,PV 1,solar,45.0,0.2,MW,Europe/Paris,100
road-occ,Road occupancy,traffic,48.85,2.36,%,Europe/Paris,
"""


@pytest.fixture()
def small_sites(conn: psycopg.Connection, tmp_path: Path) -> None:
    p = tmp_path / "sites.csv"
    p.write_text(SITES)
    register_sites_csv(conn, p)


def _write(tmp_path: Path, name: str, rows: list[str]) -> Path:
    p = tmp_path / name
    p.write_text("timestamp,site_id,value,unit\n" + "\n".join(rows) + "\n")
    return p


def _readings(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT sensor_id, ts, value, quality_flags FROM readings ORDER BY sensor_id, ts"
    ).fetchall()


def test_snapshot_ingest_twice_changes_nothing(conn, snapshot_sites) -> None:
    path = SNAPSHOT / "transport_bike.csv.gz"
    first = ingest_csv(conn, path)
    assert first.inserted == first.read == 53_838 and first.quarantined == 0
    before = conn.execute("SELECT count(*), sum(value), max(ingested_at) FROM readings").fetchone()
    second = ingest_csv(conn, path)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 53_838)
    after = conn.execute("SELECT count(*), sum(value), max(ingested_at) FROM readings").fetchone()
    assert before == after  # not even ingested_at moved: identical rows are untouched


def test_corrected_value_updates_the_row(conn, small_sites, tmp_path) -> None:
    ingest_csv(conn, _write(tmp_path, "a.csv", [
        "2024-05-01T10:00:00+00:00,bike-a,10,bicycles/h",
        "2024-05-01T11:00:00+00:00,bike-a,12,bicycles/h"]))
    res = ingest_csv(conn, _write(tmp_path, "b.csv", [
        "2024-05-01T10:00:00+00:00,bike-a,11,bicycles/h",
        "2024-05-01T11:00:00+00:00,bike-a,12,bicycles/h",
        "2024-05-01T12:00:00+00:00,bike-a,9,bicycles/h"]))
    assert (res.inserted, res.updated, res.unchanged) == (1, 1, 1)
    assert [r[2] for r in _readings(conn)] == [11, 12, 9]


def test_mixed_file_good_rows_land_bad_rows_quarantined(conn, small_sites, tmp_path) -> None:
    rows = [
        "2024-05-01T10:00:00+00:00,bike-a,10,bicycles/h",     # good
        "2024-05-01T11:00:00+00:00,bike-x,10,bicycles/h",     # unknown sensor
        "2024-05-01T12:00:00+00:00,bike-a,abc,bicycles/h",    # not a number
        "2024-05-01T13:00:00+00:00,bike-a,-3,bicycles/h",     # negative count
        "yesterday,bike-a,4,bicycles/h",                      # bad timestamp
        "2024-05-01T14:00:00+00:00,bike-a,inf,bicycles/h",    # not finite
        "2024-05-01T15:00:00+00:00,bike-a,5,furlongs",        # unknown unit
        "2024-05-01T10:00:00+00:00,pv-1,-0.5,MW",             # small negative: kept, flagged
        "2024-05-01T11:00:00+00:00,pv-1,-50,MW",              # too negative
        "2024-05-01T12:00:00+00:00,pv-1,40000,kW",            # converted to 40 MW
        "2024-05-01T13:00:00+00:00,pv-1,3,bicycles/h",        # wrong dimension
        "2024-05-01T10:00:00+00:00,road-occ,101,%",           # out of range
        "2024-05-01T11:00:00+02:00,road-occ,20,%",            # good, offset converted
    ]
    res = ingest_csv(conn, _write(tmp_path, "mixed.csv", rows))
    assert res.read == 13 and res.inserted == 4 and res.quarantined == 9
    got = {(r[0], r[1].isoformat()): (r[2], r[3]) for r in _readings(conn)}
    assert got[("pv-1", "2024-05-01T10:00:00+00:00")] == (-0.5, FLAG_NEGATIVE_NIGHT)
    assert got[("pv-1", "2024-05-01T12:00:00+00:00")][0] == pytest.approx(40.0)
    assert ("road-occ", "2024-05-01T09:00:00+00:00") in got
    reasons = dict(conn.execute("SELECT line_no, reason FROM quarantine").fetchall())
    assert reasons[3] == "unknown sensor 'bike-x'"
    assert "not a finite number" in reasons[4]
    assert "negative count" in reasons[5]
    assert "not ISO 8601" in reasons[6]
    assert "unknown unit 'furlongs'" in reasons[8]
    assert "cannot be converted" in reasons[12]
    assert "outside 0-100" in reasons[13]
    # re-ingesting the same file does not duplicate the quarantine either
    again = ingest_csv(conn, tmp_path / "mixed.csv")
    assert again.unchanged == 4
    assert conn.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 9


def test_dst_days_with_naive_local_timestamps(conn, small_sites, tmp_path) -> None:
    # Spring 2024-03-31 in Paris: 02:00 does not exist (23 h day).
    spring = [f"2024-03-31T{h:02d}:00:00,bike-a,{h},bicycles/h" for h in range(24)]
    # Autumn 2024-10-27: 02:00 happens twice (25 h day), given twice in file order.
    autumn = [f"2024-10-27T{h:02d}:00:00,bike-a,{100 + h},bicycles/h" for h in range(3)]
    autumn += ["2024-10-27T02:00:00,bike-a,202.5,bicycles/h"]
    autumn += [f"2024-10-27T{h:02d}:00:00,bike-a,{100 + h},bicycles/h" for h in range(3, 24)]
    res = ingest_csv(conn, _write(tmp_path, "dst.csv", spring + autumn))
    assert res.quarantined == 1
    reason = conn.execute("SELECT reason FROM quarantine").fetchone()[0]
    assert "nonexistent local time" in reason
    per_day = dict(conn.execute(
        """SELECT (ts AT TIME ZONE 'Europe/Paris')::date::text, count(*) FROM readings
           GROUP BY 1""").fetchall())
    assert per_day == {"2024-03-31": 23, "2024-10-27": 25}
    repeated = conn.execute(
        "SELECT ts, value FROM readings WHERE quality_flags & %s > 0 ORDER BY ts",
        (FLAG_DST_REPEATED,)).fetchall()
    # first 02:00 is summer time (00:00 UTC), second is winter time (01:00 UTC)
    assert [(t.hour, v) for t, v in repeated] == [(0, 102.0), (1, 202.5)]


def test_ambiguous_time_seen_once_is_quarantined(conn, small_sites, tmp_path) -> None:
    res = ingest_csv(conn, _write(tmp_path, "amb.csv", ["2024-10-27T02:30:00,bike-a,3,bicycles/h"]))
    assert res.quarantined == 1 and res.inserted == 0
    assert "ambiguous local time" in conn.execute("SELECT reason FROM quarantine").fetchone()[0]


def test_gzip_input_and_duplicate_rows_in_one_file(conn, small_sites, tmp_path) -> None:
    p = tmp_path / "x.csv.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("timestamp,site_id,value,unit\n")
        fh.write("2024-05-01T10:00:00Z,bike-a,1,bicycles/h\n")
        fh.write("2024-05-01T10:00:00Z,bike-a,2,bicycles/h\n")
    res = ingest_csv(conn, p)
    assert (res.inserted, res.quarantined) == (1, 1)
    assert _readings(conn)[0][2] == 2  # the later row wins, the earlier one is kept aside
    assert "duplicate" in conn.execute("SELECT reason FROM quarantine").fetchone()[0]


def test_missing_column_is_a_clear_error(conn, small_sites, tmp_path) -> None:
    from ecodemo.errors import InputError

    p = tmp_path / "bad.csv"
    p.write_text("time,site_id,value\n2024-01-01T00:00Z,bike-a,1\n")
    with pytest.raises(InputError, match=r"bad.csv, line 1: missing column\(s\) timestamp, unit"):
        ingest_csv(conn, p)


def test_concurrent_overlapping_ingests_no_duplicates(db_url, tmp_path) -> None:
    with psycopg.connect(db_url, autocommit=True) as c:
        register_sites_csv(c, SNAPSHOT / "sites.csv")
    src = SNAPSHOT / "transport_bike.csv.gz"
    errors: list[BaseException] = []
    results = []

    def worker() -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as c:
                results.append(ingest_csv(c, src, batch_rows=10_000))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r.inserted for r in results) == 53_838
    with psycopg.connect(db_url) as c:
        assert c.execute("SELECT count(*) FROM readings").fetchone()[0] == 53_838


def test_ingest_racing_an_uncommitted_one_falls_back_to_upsert(db_url, tmp_path) -> None:
    """B finds nothing stored, COPYs, waits on A's uncommitted rows, then upserts correctly."""
    with psycopg.connect(db_url, autocommit=True) as c:
        p = tmp_path / "sites.csv"
        p.write_text(SITES)
        register_sites_csv(c, p)
    a_rows = [f"2024-05-01T{h:02d}:00:00+00:00,bike-a,{h},bicycles/h" for h in range(10)]
    # B: hours 0-4 identical, 5-9 corrected, 10-14 new
    b_rows = a_rows[:5] + [f"2024-05-01T{h:02d}:00:00+00:00,bike-a,{h + 100},bicycles/h"
                           for h in range(5, 10)]
    b_rows += [f"2024-05-01T{h:02d}:00:00+00:00,bike-a,{h},bicycles/h" for h in range(10, 15)]
    file_a, file_b = _write(tmp_path, "a.csv", a_rows), _write(tmp_path, "b.csv", b_rows)

    conn_a = psycopg.connect(db_url)  # not autocommit: A's rows stay uncommitted until commit
    try:
        assert ingest_csv(conn_a, file_a).inserted == 10
        result: list = []

        def run_b() -> None:
            with psycopg.connect(db_url, autocommit=True) as conn_b:
                result.append(ingest_csv(conn_b, file_b))

        b = threading.Thread(target=run_b)
        b.start()
        b.join(timeout=1.5)
        assert b.is_alive(), "B should wait on A's uncommitted rows"
        conn_a.commit()
        b.join(timeout=60)
        assert not b.is_alive()
    finally:
        conn_a.close()
    (res,) = result
    assert (res.inserted, res.updated, res.unchanged) == (5, 5, 5)
    with psycopg.connect(db_url) as c:
        values = [r[0] for r in c.execute(
            "SELECT value FROM readings WHERE sensor_id = 'bike-a' ORDER BY ts").fetchall()]
    assert values == [*range(5), *range(105, 110), *range(10, 15)]


def test_line_numbers_across_batches(conn, small_sites, tmp_path) -> None:
    base = np.datetime64("2024-01-01T00", "h")
    rows = [f"{base + i}:00:00+00:00,bike-a,{'x' if i in (1500, 3333) else i},bicycles/h"
            for i in range(5_000)]
    p = _write(tmp_path, "lines.csv", rows)
    res = ingest_csv(conn, p, batch_rows=1_000)  # five batches, carried across Arrow blocks
    assert (res.read, res.inserted, res.quarantined) == (5_000, 4_998, 2)
    lines = [r[0] for r in conn.execute("SELECT line_no FROM quarantine ORDER BY 1")]
    assert lines == [1502, 3335]  # header is line 1, row i is line i + 2
    again = ingest_csv(conn, p, batch_rows=1_000)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4_998)
