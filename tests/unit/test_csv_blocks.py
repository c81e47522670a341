"""The block reader behind ``ingest csv``: tiny blocks, so that rows, bad rows and multi-byte
characters fall across block boundaries; its numbering must be Arrow's for the whole file."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from ecodemo.errors import InputError
from ecodemo.store.ingest import iter_csv_batches
from ecodemo.store.ingest.csv_blocks import CsvBlocks

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

ROWS = [f"2024-01-01T{h:02d}:00:00Z,vélo-{h % 3},{h},bicycles/h\n" for h in range(24)]


def _read_all(path: Path, block_bytes: int) -> tuple[list[str], list[tuple[int, str]], bool]:
    invalid: list[tuple[int, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    blocks = CsvBlocks(path, delimiter=";" if path.suffix == ".txt" else ",",
                       block_bytes=block_bytes)
    try:
        tables = list(blocks.tables(blocks.names, on_invalid))
    finally:
        blocks.close()
    values = pa.concat_tables(tables).column("value").to_pylist() if tables else []
    return values, invalid, blocks.marked


@pytest.mark.parametrize("block_bytes", [48, 64, 100, 1 << 20])
def test_rows_and_invalid_rows_numbered_as_arrow_does_for_the_whole_file(tmp_path,
                                                                        block_bytes) -> None:
    rows = list(ROWS)
    rows[3] = "2024-01-01T03:00:00Z,cut\n"          # row 5 (header is row 1)
    rows[10] = "\n"                                  # a blank line: not counted by Arrow
    rows[15] = rows[15].rstrip("\n") + ",extra\r\n"  # a Windows line end too
    path = tmp_path / "f.csv"
    path.write_bytes(("timestamp,site_id,value,unit\n" + "".join(rows)).encode())
    whole: list[tuple[int, str]] = []
    expected = pacsv.read_csv(path, read_options=pacsv.ReadOptions(use_threads=False),
                              parse_options=pacsv.ParseOptions(
        invalid_row_handler=lambda r: whole.append((r.number, r.text)) or "skip"))
    values, invalid, marked = _read_all(path, block_bytes)
    assert values == [str(v) for v in expected.column("value").to_pylist()]
    assert invalid == whole and [n for n, _ in invalid] == [5, 16]
    assert not marked


@pytest.mark.parametrize("block_bytes", [48, 64, 1 << 20])
def test_bytes_that_are_not_utf8_are_marked_wherever_the_block_ends(tmp_path,
                                                                   block_bytes) -> None:
    rows = [r.encode() for r in ROWS]
    rows[2] = rows[2].replace(b",2,", b",2\xe9,")          # Latin-1 byte in a good row
    rows[-1] = rows[-1][:30] + b"caf\xc3"                   # cut inside a character, no newline
    path = tmp_path / "f.csv.gz"
    path.write_bytes(gzip.compress(b"timestamp,site_id,value,unit\n" + b"".join(rows)))
    values, invalid, marked = _read_all(path, block_bytes)
    assert marked
    assert values[2] == "2\ufffd\\xe9"
    assert invalid == [(25, rows[-1][:30].decode() + "caf\ufffd\\xc3")]
    assert len(values) == 23 and values[:2] == ["0", "1"] and values[3:] == [
        str(h) for h in range(3, 23)]


def test_a_line_longer_than_a_block_is_one_error_naming_the_file(tmp_path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("timestamp,site_id,value,unit\n" + ROWS[0] + "x" * 500 + "\n" + ROWS[1])
    with pytest.raises(InputError, match=r"long\.csv: malformed CSV near line 3: a line longer"):
        _read_all(path, 64)


def test_semicolon_export_with_bad_rows_yields_its_good_rows_with_their_lines(tmp_path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes("Horodatage;Débit;Autre\n01/01/2025 00:00;12;a\n01/01/2025 01:00;13\n"
                     "01/01/2025 02:00;1\xe94;c\n01/01/2025 03:00;15;d\n".encode("latin-1"))
    with pytest.raises(InputError, match="header holds bytes that are not UTF-8"):
        list(iter_csv_batches(path, 10, delimiter=";", columns=["Horodatage", "Débit"]))
    path.write_bytes(path.read_bytes().replace(b"D\xe9bit", "Débit".encode()))
    [batch] = list(iter_csv_batches(path, 10, delimiter=";", columns=["Horodatage", "Débit"]))
    assert batch.table.column("Débit").to_pylist() == ["12", "15"]
    assert batch.line_numbers is not None and batch.line_numbers.tolist() == [2, 5]
    assert [(r.line_no, r.reason.split(" (")[0]) for r in batch.rejected] == [
        (3, "2 field(s) where the header has 3"), (4, "bytes that are not UTF-8 in Débit")]
    with pytest.raises(InputError, match="missing column.s. Valeur"):
        list(iter_csv_batches(path, 10, delimiter=";", columns=["Horodatage", "Valeur"]))


@pytest.mark.parametrize("block_bytes", [48, 64, 1 << 20])
def test_cp1252_file_transcoded_block_by_block_keeps_arrows_numbering(tmp_path,
                                                                      block_bytes) -> None:
    """The same rows written in cp1252 (gzipped) read as their UTF-8 text, with a cut row and a
    byte cp1252 leaves undefined numbered as in the UTF-8 file, wherever the blocks end."""
    rows = [r.replace("bicycles/h", "vélos/h €") for r in ROWS]
    rows[3] = "2024-01-01T03:00:00Z,cut\n"   # row 5
    data = ("timestamp,site_id,value,unit\n" + "".join(rows)).encode("cp1252")
    path = tmp_path / "f.csv.gz"
    path.write_bytes(gzip.compress(data.replace(b"v\xe9lo-2,20,", b"v\x81lo-2,20,")))
    invalid: list[tuple[int, str]] = []
    blocks = CsvBlocks(path, encoding="cp1252", block_bytes=block_bytes)
    try:
        table = pa.concat_tables(list(blocks.tables(
            blocks.names, lambda r: invalid.append((r.number, r.text)) or "skip")))
    finally:
        blocks.close()
    assert invalid == [(5, "2024-01-01T03:00:00Z,cut")]
    assert table.num_rows == 23 and blocks.marked
    units = table.column("unit").to_pylist()
    assert set(units) == {"vélos/h €"}
    ids = table.column("site_id").to_pylist()
    assert ids[19] == "v\ufffd\\x81lo-2" and ids[18] == "vélo-1"  # row 22: the 0x81 marked
