"""Rows of a CSV file that are not rows: a wrong number of fields (a cut last line, a stray
comma) or bytes that are not UTF-8. Each becomes a rejected row with its line number and reason,
so the file's good rows still land.

Arrow reads the data columns as binary; a batch is cast to text in one step (which checks
UTF-8) and only a batch that fails is decoded cell by cell. Arrow's invalid-row handler gets a
row's text already decoded, so a row with both faults (a file cut inside a multi-byte character)
cannot reach it: the file is then read again in "marked" mode, where each undecodable byte
becomes U+FFFD followed by its value (``\\xe9``), from the first line not yet delivered.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .records import Rejected

#: Longest raw text kept in quarantine for a row that could not be split into fields.
MAX_RAW_CHARS = 2_000
#: Text encoding (a codec registered below) for the "marked" re-read.
MARKED_ENCODING = "ecodemo-utf-8-marked"
_MARK = "\ufffd"
_BYTE_RE = re.compile(r"\ufffd\\x([0-9a-f]{2})")
#: What Arrow raises when the invalid-row handler could not be given the row (undecodable).
HANDLER_FAILED_RE = re.compile(r"CSV parse error: Row #\d+: Expected \d+ columns, got \d+")


def _mark_bytes(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    return "".join(f"{_MARK}\\x{b:02x}" for b in bad), exc.end


class _MarkedDecoder(codecs.BufferedIncrementalDecoder):
    def _buffer_decode(self, data: Any, errors: str, final: bool) -> tuple[str, int]:
        return codecs.utf_8_decode(data, "ecodemo-mark", final)


def _search_codec(name: str) -> codecs.CodecInfo | None:
    if name.replace("_", "-") != MARKED_ENCODING:
        return None
    utf8 = codecs.lookup("utf-8")
    return codecs.CodecInfo(utf8.encode, utf8.decode, name=MARKED_ENCODING,
                            incrementalencoder=utf8.incrementalencoder,
                            incrementaldecoder=_MarkedDecoder)


codecs.register_error("ecodemo-mark", _mark_bytes)
codecs.register(_search_codec)


def structural(row: pacsv.InvalidRow) -> Rejected:
    """An Arrow invalid row (wrong field count) as a rejected row."""
    text = row.text
    fields = text.split(",")
    sid = fields[1].strip() if len(fields) > 1 and _MARK not in fields[1] else ""
    raw = text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS] + "..."
    return Rejected(row.number, sid[:200] or None, raw,
                    f"{row.actual_columns} field(s) where the header has "
                    f"{row.expected_columns} (a cut or malformed line)")


class SkippedLines:
    """Line numbers of rows Arrow skipped, as sorted [start, end) runs (a file of a million
    invalid rows is one run): good rows are numbered around them."""

    def __init__(self) -> None:
        self.runs: list[list[int]] = []

    def add(self, line: int) -> None:
        if self.runs and self.runs[-1][1] == line:
            self.runs[-1][1] = line + 1
        else:
            self.runs.append([line, line + 1])

    def number(self, start: int, n: int) -> np.ndarray:
        """Lines of the next ``n`` good rows from line ``start``; forgets runs before it."""
        self.runs = [r for r in self.runs if r[1] > start]
        parts: list[np.ndarray] = []
        line, need = start, n
        for a, b in self.runs:
            if need == 0:
                break
            if a > line:
                k = min(a - line, need)
                parts.append(np.arange(line, line + k, dtype=np.int64))
                need -= k
                line += k
            if need:
                line = max(line, b)
        if need:
            parts.append(np.arange(line, line + need, dtype=np.int64))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _decode_cells(col: pa.ChunkedArray) -> pa.Array:
    return pa.array([None if b is None else b.decode("utf-8", "ecodemo-mark")
                     for b in col.to_pylist()], pa.string())


def as_text(cols: list[pa.ChunkedArray], names: list[str], lines: np.ndarray, marked: bool
            ) -> tuple[list[Any], np.ndarray | None, list[Rejected]]:
    """Binary columns as text, and the rows holding bytes that are not UTF-8 rejected:
    (text columns, mask of the rows kept or None for all, rejected rows)."""
    try:
        text = [c.cast(pa.string()) for c in cols]  # checks UTF-8 in one pass: the usual path
    except pa.ArrowInvalid:
        text, marked = [_decode_cells(c) for c in cols], True
    if not marked:
        return text, None, []
    bad = np.zeros(len(lines), dtype=bool)
    for c in text:
        bad |= pc.fill_null(pc.match_substring(c, _MARK), False).to_numpy(zero_copy_only=False)
    if not bad.any():
        return text, None, []
    pos = np.flatnonzero(bad)
    cells = [c.take(pa.array(pos)).to_pylist() for c in text]
    rejected = []
    for j, p in enumerate(pos.tolist()):
        row = [cells[k][j] or "" for k in range(len(cells))]
        where = [name for name, cell in zip(names, row, strict=True) if _MARK in cell]
        byte = _BYTE_RE.search("".join(row))
        rejected.append(Rejected(
            int(lines[p]), None if _MARK in row[1] else row[1] or None, ",".join(row),
            f"bytes that are not UTF-8 in {', '.join(where)} (first 0x"
            f"{byte.group(1) if byte else '??'}; a Latin-1 or Windows-1252 export?)"))
    return text, ~bad, rejected
