"""A bad row is a row, not a file: cut lines, wrong field counts and bytes that are not UTF-8
go to quarantine with their line number, the file's good rows land; real snapshot rows."""

from __future__ import annotations

import gzip
from pathlib import Path

import psycopg
import pytest

from ecodemo.errors import InputError
from ecodemo.store.ingest import ingest_csv
from tests.conftest import SNAPSHOT

# An exception raised inside pyarrow's invalid-row handler (pyarrow decodes a malformed row
# strictly before calling it) is only printed as "Exception ignored": here it fails the test.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

N = 2_000


def _real_lines() -> list[bytes]:
    """Header and the first 2,000 rows of the bundled bike counters file."""
    with gzip.open(SNAPSHOT / "transport_bike.csv.gz", "rb") as fh:
        return [next(fh) for _ in range(N + 1)]


def _write(tmp_path: Path, lines: list[bytes], name: str = "bad.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(b"".join(lines))
    return p


def _quarantine(conn: psycopg.Connection) -> list[tuple[int, str, str]]:
    return conn.execute("SELECT line_no, reason, raw FROM quarantine ORDER BY line_no").fetchall()


def _count(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM readings").fetchone()[0]


def _check_twice(conn: psycopg.Connection, path: Path, bad_line: int, reason: str) -> None:
    first = ingest_csv(conn, path)
    assert (first.read, first.inserted, first.quarantined) == (N, N - 1, 1)
    assert _count(conn) == N - 1
    [(line, why, _raw)] = _quarantine(conn)
    assert line == bad_line and reason in why
    again = ingest_csv(conn, path)  # idempotent: nothing new, the same single quarantined row
    assert (again.unchanged, again.inserted, again.updated) == (N - 1, 0, 0)
    assert _count(conn) == N - 1 and len(_quarantine(conn)) == 1


def test_cut_last_line(conn, snapshot_sites, tmp_path) -> None:
    lines = _real_lines()
    lines[-1] = lines[-1][:23]  # an interrupted upload: "2020-...T..:00:00+00,p" and no newline
    assert lines[-1].count(b",") < 3
    _check_twice(conn, _write(tmp_path, lines), N + 1, "field(s) where the header has 4")


def test_one_invalid_byte(conn, snapshot_sites, tmp_path) -> None:
    lines = _real_lines()
    ts, sid, value, unit = lines[1000].split(b",")
    lines[1000] = b",".join([ts, sid, value[:0] + b"\xe9" + value, unit])  # Latin-1 "é"
    path = _write(tmp_path, lines, "latin1.csv.gz")
    path.write_bytes(gzip.compress(path.read_bytes()))
    _check_twice(conn, path, 1001, "not UTF-8 in value (first 0xe9")
    raw = _quarantine(conn)[0][2]
    assert "\\xe9" in raw and sid.decode() in raw  # which byte, and the rest of the row as read


def test_cut_inside_a_multibyte_character(conn, snapshot_sites, tmp_path) -> None:
    """The last line is both short and undecodable: its bytes are marked before Arrow parses
    the block, so the invalid-row handler gets text (no "Exception ignored", no re-read)."""
    lines = _real_lines()
    lines[-1] = lines[-1][:30] + b"caf\xc3"
    _check_twice(conn, _write(tmp_path, lines), N + 1, "field(s) where the header has 4")
    assert "caf\ufffd\\xc3" in _quarantine(conn)[0][2]


def test_line_numbers_stay_right_after_skipped_rows(conn, snapshot_sites, tmp_path) -> None:
    lines = _real_lines()
    lines[10] = lines[10].rstrip(b"\n") + b",extra\n"       # line 11: five fields
    lines[11] = b"garbage\n"                                # line 12: one field
    lines[500] = lines[500].replace(b"bicycles/h", b"furlongs")  # line 501: a valid row, bad
    lines[900] = lines[900].replace(b",", b",\xff", 1)     # line 901: bytes in site_id
    res = ingest_csv(conn, _write(tmp_path, lines), batch_rows=300)
    assert (res.read, res.inserted, res.quarantined) == (N, N - 4, 4)
    got = [(line, why.split(" ")[0]) for line, why, _raw in _quarantine(conn)]
    assert got == [(11, "5"), (12, "1"), (501, "unknown"), (901, "bytes")]


def test_a_file_of_only_bad_rows_lands_nothing_and_keeps_them(conn, snapshot_sites,
                                                               tmp_path) -> None:
    path = _write(tmp_path, [b"timestamp,site_id,value,unit\n"] + [b"x\n"] * 50)
    res = ingest_csv(conn, path, batch_rows=7)
    assert (res.read, res.inserted, res.quarantined) == (50, 0, 50)
    assert [q[0] for q in _quarantine(conn)] == list(range(2, 52))


@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
    b'{"timestamp": "2024-01-01", "value": 3}\n',
    b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x02\x15\x00\x12\x00\x00\x08\x1c",
])
def test_a_file_that_is_not_csv_is_refused_in_one_line(conn, snapshot_sites, tmp_path,
                                                       content: bytes) -> None:
    path = tmp_path / "not.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        ingest_csv(conn, path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert _count(conn) == 0 and _quarantine(conn) == []
