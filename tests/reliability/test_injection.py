"""Injection attempts through site fields, sensor ids and CSV values: stored as data or
rejected with a typed error, never executed. NUL bytes, very long strings and unicode too."""

from __future__ import annotations

import csv
from pathlib import Path

import psycopg
import pytest

from ecodemo.errors import InputError
from ecodemo.store.ingest import ingest_csv
from ecodemo.store.sites import (
    MAX_ID_CHARS,
    Site,
    register_sites,
    register_sites_csv,
)

DROP = "x'); DROP TABLE readings;--"
EVIL_IDS = [DROP, 'b"; DELETE FROM sites; --', "c$$; TRUNCATE quarantine; $$", "vélo-Ωmega-🚲",
            "d\\'; SELECT pg_sleep(10);--", "e%s%(x)s{0}"]


def _tables(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_hostile_site_fields_and_sensor_ids_are_stored_as_data(conn, tmp_path) -> None:
    tables = _tables(conn)
    sites = _write_csv(tmp_path / "sites.csv",
                       ["site_id", "name", "kind", "latitude", "longitude", "unit", "area",
                        "source", "licence", "note'); DROP TABLE sites;--"],
                       [[sid, f"{sid} name '; DROP TABLE sensors;--", "bike", "48.8", "2.3",
                         "bicycles/h", "Robert'); DROP TABLE students;--", "src\"'", "ODbL",
                         "1; DROP TABLE models"] for sid in EVIL_IDS])
    assert register_sites_csv(conn, sites) == len(EVIL_IDS)
    stored = dict(conn.execute("SELECT site_id, name FROM sites").fetchall())
    assert set(stored) == set(EVIL_IDS)  # byte for byte
    assert stored[DROP] == f"{DROP} name '; DROP TABLE sensors;--"
    attrs = conn.execute("SELECT attributes FROM sites WHERE site_id = %s", (DROP,)).fetchone()[0]
    assert attrs == {"note'); DROP TABLE sites;--": "1; DROP TABLE models"}

    rows = [[f"2024-05-01T{h:02d}:00:00Z", sid, str(h), "bicycles/h"]
            for sid in EVIL_IDS for h in range(3)]
    rows += [["2024-05-01T05:00:00Z", EVIL_IDS[0], "1); DROP TABLE readings;--", "bicycles/h"],
             ["2024-05-01T06:00:00Z", EVIL_IDS[0], "7", "bicycles/h'); DROP TABLE x;--"],
             ["2024-05-01T07:00:00Z'); DROP TABLE readings;--", EVIL_IDS[1], "7", "bicycles/h"],
             ["2024-05-01T08:00:00Z", "nobody'); DROP TABLE readings;--", "7", "bicycles/h"]]
    data = _write_csv(tmp_path / "r.csv", ["timestamp", "site_id", "value", "unit"], rows)
    counts = ingest_csv(conn, data)
    assert (counts.inserted, counts.quarantined) == (3 * len(EVIL_IDS), 4)
    assert _tables(conn) == tables  # nothing dropped, nothing created
    per_sensor = dict(conn.execute(
        "SELECT sensor_id, count(*) FROM readings GROUP BY 1").fetchall())
    assert per_sensor == {sid: 3 for sid in EVIL_IDS}
    raws = [r[0] for r in conn.execute("SELECT raw FROM quarantine").fetchall()]
    assert any("1); DROP TABLE readings;--" in r for r in raws)
    assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == len(EVIL_IDS)


@pytest.mark.parametrize(("row", "field"), [
    (["nul\x00id", "n", "bike", "48.8", "2.3", "bicycles/h"], "site_id"),
    (["ok-id", "name with \x00 NUL", "bike", "48.8", "2.3", "bicycles/h"], "name"),
    (["L" * (MAX_ID_CHARS + 1), "n", "bike", "48.8", "2.3", "bicycles/h"], "site_id"),
    (["ok-id", "n" * 100_000, "bike", "48.8", "2.3", "bicycles/h"], "name"),
    (["tab\tid", "n", "bike", "48.8", "2.3", "bicycles/h"], "site_id"),
    (["ok-id", "n", "bike", "NaN", "2.3", "bicycles/h"], "latitude"),
    (["ok-id", "n", "bike'); DROP TABLE sites;--", "48.8", "2.3", "bicycles/h"], "kind"),
])
def test_unstorable_site_fields_are_rejected_with_a_typed_error(conn, tmp_path, row,
                                                                field) -> None:
    tables = _tables(conn)
    path = _write_csv(tmp_path / "sites.csv",
                      ["site_id", "name", "kind", "latitude", "longitude", "unit"], [row])
    with pytest.raises(InputError) as info:
        register_sites_csv(conn, path)
    assert f"field '{field}'" in str(info.value) and "\n" not in str(info.value)
    assert len(str(info.value)) < 400  # a 100,000-character field is not echoed back
    assert conn.execute("SELECT count(*) FROM sites").fetchone()[0] == 0
    assert _tables(conn) == tables


def test_sites_built_in_code_are_checked_too(conn) -> None:
    """Connectors register Site objects directly (the catalogue): the same checks apply."""
    with pytest.raises(InputError, match="NUL"):
        register_sites(conn, [Site("ok", "n", "bike", 48.8, 2.3, "bicycles/h",
                                   area="a\x00b")])
    with pytest.raises(InputError,
                       match="rejected by the database: invalid input syntax for type interval"):
        register_sites(conn, [Site("ok", "n", "bike", 48.8, 2.3, "bicycles/h",
                                   resolution="every now and then'); DROP TABLE sites;--")])
    assert conn.execute("SELECT count(*) FROM sites").fetchone()[0] == 0


def test_nul_bytes_and_huge_cells_in_readings_are_quarantined(conn, tmp_path) -> None:
    register_sites(conn, [Site("bike-a", "A", "bike", 48.8, 2.3, "bicycles/h")])
    tables = _tables(conn)
    huge_id = "s" * 200_000
    lines = ["timestamp,site_id,value,unit",
             "2024-05-01T00:00:00Z,bike-a,1,bicycles/h",
             "2024-05-01T01:00:00Z,bike-\x00a,2,bicycles/h",
             "2024-05-01T02:00:00Z,bike-a,3\x00,bicycles/h",
             f"2024-05-01T03:00:00Z,{huge_id},4,bicycles/h",
             f"2024-05-01T04:00:00Z,bike-a,{'9' * 100_000},bicycles/h",
             "2024-05-01T05:00:00Z,bike-a,٣,bicycles/h",          # Arabic-Indic digit
             "2024-05-01T06:00:00Z,bike-a,６,bicycles/h"]          # full-width digit
    path = tmp_path / "r.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode())
    counts = ingest_csv(conn, path)
    assert counts.read == 7 and counts.inserted == 1
    assert counts.read == counts.inserted + counts.quarantined
    assert conn.execute("SELECT value FROM readings").fetchall() == [(1.0,)]
    q = conn.execute("SELECT sensor_id, raw, reason FROM quarantine ORDER BY line_no").fetchall()
    assert len(q) == 6
    assert q[0][0] == "bike-\\0a"  # NUL kept visible, as PostgreSQL text cannot hold it
    assert q[2][0] == huge_id and "unknown sensor" in q[2][2]
    assert _tables(conn) == tables
