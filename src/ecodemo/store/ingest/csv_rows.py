"""Rows of a CSV file that are not rows: a wrong number of fields (a cut last line, a stray
comma) or bytes that are not UTF-8. Each becomes a rejected row with its line number and reason,
so the file's good rows still land.

Arrow never sees bytes that are not UTF-8 (``csv_blocks`` marks them before parsing): each such
byte becomes U+FFFD followed by its value (``\\xe9``), and the rows holding one are rejected
here (``as_text``).
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
#: Codec error handler marking each undecodable byte (registered below).
MARK_ERRORS = "ecodemo-mark"
_MARK = "\ufffd"
_BYTE_RE = re.compile(r"\ufffd\\x([0-9a-f]{2})")


def _mark_bytes(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    return "".join(f"{_MARK}\\x{b:02x}" for b in bad), exc.end


codecs.register_error(MARK_ERRORS, _mark_bytes)


def structural(row: pacsv.InvalidRow, *, delimiter: str = ",", id_index: int | None = 1
               ) -> Rejected:
    """An Arrow invalid row (wrong field count) as a rejected row; ``id_index``: the field
    holding the sensor id, if any."""
    text = row.text
    sid = ""
    if id_index is not None:
        fields = text.split(delimiter)
        if len(fields) > id_index and not _BYTE_RE.search(fields[id_index]):
            sid = fields[id_index].strip()
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


def not_utf8_rows(cols: list[Any], names: list[str], lines: np.ndarray, marked: bool, *,
            delimiter: str = ",", id_index: int | None = 1, encoding: str = "utf-8"
            ) -> tuple[np.ndarray | None, list[Rejected]]:
    """The rows holding bytes that were not UTF-8 (marked by ``csv_blocks``), rejected:
    (mask of the rows kept or None for all, rejected rows). ``marked``: whether the file had
    any such byte so far (otherwise nothing is scanned); ``encoding``: the file's."""
    hint = "; a Latin-1 or Windows-1252 export?" if encoding == "utf-8" else ""
    if not marked:
        return None, []
    bad = np.zeros(len(lines), dtype=bool)
    for c in cols:
        bad |= pc.fill_null(pc.match_substring(c, _MARK), False).to_numpy(zero_copy_only=False)
    if not bad.any():
        return None, []
    pos = np.flatnonzero(bad)
    cells = [c.take(pa.array(pos)).to_pylist() for c in cols]
    rejected = []
    for j, p in enumerate(pos.tolist()):
        row = [cells[k][j] or "" for k in range(len(cells))]
        where = [name for name, cell in zip(names, row, strict=True) if _BYTE_RE.search(cell)]
        if not where:  # a U+FFFD that was in the file as such: valid text
            bad[p] = False
            continue
        byte = _BYTE_RE.search("".join(row))
        sid = row[id_index] if id_index is not None and not _BYTE_RE.search(row[id_index]) \
            else ""
        rejected.append(Rejected(
            int(lines[p]), sid or None, delimiter.join(row),
            f"bytes that are not {'UTF-8' if encoding == 'utf-8' else encoding} in "
            f"{', '.join(where)} (first 0x{byte.group(1) if byte else '??'}{hint})"))
    return (~bad if rejected else None), rejected
