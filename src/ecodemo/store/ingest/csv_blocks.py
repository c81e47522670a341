"""A CSV file (gzip or not) read in blocks cut at line ends, each block parsed by Arrow from
memory, so that Arrow is only ever given valid UTF-8 and never calls back into Python from one
of its own threads.

Why not Arrow's streaming reader on the file: pyarrow decodes an invalid row's text as strict
UTF-8 before calling the invalid-row handler, so a row both malformed and not UTF-8 (a file cut
inside a multi-byte character) printed "Exception ignored" and failed the read. Here each block
is checked before Arrow sees it (``bytes.isascii`` first: the usual case costs one fast scan),
and a block that is not UTF-8 has each undecodable byte marked (U+FFFD then ``\\xe9``, see
``csv_rows``), so every row the handler gets decodes. A file in a single-byte encoding
(``latin-1``, ``cp1252``) has each block transcoded to UTF-8 the same way: its line ends are the
same bytes, so blocks are still cut at them and line numbers do not move. Python reads the file
through Arrow's native stream: no Python file object or codec is ever called from an Arrow I/O
thread (that crashed at interpreter exit). A block with no bad row is parsed on Arrow's threads
with no handler; one with a bad row is parsed again serially in the calling thread, with the
handler.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from ecodemo.errors import InputError

from .csv_rows import MARK_ERRORS
from .records import one_line

#: Bytes read per block (about 45,000 long-format rows); also the longest line accepted.
BLOCK_BYTES = 2 << 20
#: Arrow's own unit of parallel parsing inside a block.
_PARSE_BLOCK_BYTES = 256 << 10


def _open_stream(path: Path) -> tuple[pa.NativeFile, pa.OSFile]:
    raw = pa.OSFile(str(path), "rb")
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return pa.CompressedInputStream(raw, "gzip"), raw
    return raw, raw


def _last_line_end(buf: bytes) -> int:
    """Position just after the last line end (Arrow ends a row at ``\\n`` or ``\\r``), or 0."""
    return max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1


class CsvBlocks:
    """The header's column names, then the rows as Arrow tables of text columns (``tables``).

    Row numbers are Arrow's: the header is row 1 and blank lines are not counted, as Arrow
    numbers rows of a whole file. ``marked`` tells whether any block held bytes that are not
    UTF-8 (the rows holding them are then found by their U+FFFD marks).
    """

    def __init__(self, path: Path, *, delimiter: str = ",", encoding: str = "utf-8",
                 block_bytes: int = BLOCK_BYTES) -> None:
        self.path = path
        self.delimiter = delimiter
        self.encoding = codecs.lookup(encoding).name  # 'utf-8', 'iso8859-1', 'cp1252'
        self.block_bytes = block_bytes
        self.marked = False
        self.rows_before = 1  # rows numbered before the next block (the header is row 1)
        self._size = max(path.stat().st_size, 1)
        self._stream, self._raw = _open_stream(path)
        try:
            self.names, self._carry = self._read_header()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._stream.close()

    def fraction(self) -> float:
        """Share of the file (compressed bytes for gzip) read so far."""
        return min(self._raw.tell() / self._size, 1.0)

    def _read(self) -> bytes:
        try:
            return self._stream.read(self.block_bytes)
        except OSError as exc:  # a broken gzip stream
            raise InputError(f"not a readable CSV file: {one_line(exc)}",
                             source=str(self.path)) from exc

    def _read_header(self) -> tuple[list[str], bytes]:
        buf = b""
        while True:
            data = self._read()
            buf = (buf + data).lstrip(b"\r\n")  # Arrow skips blank lines before the header
            end = min((i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0), default=-1)
            if end >= 0 or not data or len(buf) > self.block_bytes:
                break
        if not buf:
            raise InputError("not a readable CSV file: empty file", source=str(self.path))
        if end < 0 and data:
            raise InputError(f"not a readable CSV file: a header longer than "
                             f"{self.block_bytes:,} bytes", source=str(self.path), line=1)
        header = buf if end < 0 else buf[:end]
        try:
            text = header.decode(self.encoding)
        except UnicodeDecodeError as exc:
            utf8 = self.encoding == "utf-8"
            hint = "; not text, or a Latin-1/Windows-1252 export: set the source's encoding" \
                if utf8 else "; not text, or another encoding"
            raise InputError(f"not a readable CSV file: the header holds bytes that are not "
                             f"{'UTF-8' if utf8 else self.encoding} (0x{header[exc.start]:02x} "
                             f"at byte {exc.start}"
                             f"{hint})", source=str(self.path), line=1) from None
        header = text.encode("utf-8")
        try:
            names = pacsv.read_csv(
                pa.py_buffer(header + b"\n"),
                read_options=pacsv.ReadOptions(use_threads=False),
                parse_options=pacsv.ParseOptions(delimiter=self.delimiter)).schema.names
        except pa.ArrowInvalid as exc:
            raise InputError(f"not a readable CSV file: {one_line(exc)}", source=str(self.path),
                             line=1) from exc
        return names, (b"" if end < 0 else buf[end:])

    def tables(self, columns: list[str],
               on_invalid: Callable[[pacsv.InvalidRow], str]) -> Iterator[pa.Table]:
        """The file's rows, ``columns`` only, as string columns, one table per block.

        ``on_invalid`` gets each row with a wrong field count, numbered in the whole file.
        A line longer than a block raises :class:`InputError` (memory stays bounded).
        """
        carry = self._carry
        self._carry = b""
        while True:
            data = self._read()
            buf = carry + data if carry else data
            if not data:  # end of file: the rest, even without a final line end
                if buf.strip(b"\r\n"):
                    yield self._parse(buf, columns, on_invalid)
                return
            cut = _last_line_end(buf)
            if cut == 0:
                if len(buf) > self.block_bytes:
                    raise InputError(f"malformed CSV near line {self.rows_before + 1}: a line "
                                     f"longer than {self.block_bytes:,} bytes",
                                     source=str(self.path))
                carry = buf
                continue
            carry = buf[cut:]
            yield self._parse(buf[:cut], columns, on_invalid)

    def _parse(self, block: bytes, columns: list[str],
               on_invalid: Callable[[pacsv.InvalidRow], str]) -> pa.Table:
        if not block.isascii():
            block = self._to_utf8(block)
        offset = self.rows_before
        invalid = 0

        def handler(row: pacsv.InvalidRow) -> str:
            nonlocal invalid
            invalid += 1
            return on_invalid(row._replace(number=row.number + offset))

        try:
            # The usual block has no bad row: parsed on Arrow's threads, with no handler (Arrow
            # numbers invalid rows only when parsing serially, and no Python runs on its
            # threads). A block with one raises, and is parsed again serially with the handler.
            table = self._arrow(block, columns, None)
        except pa.ArrowInvalid:
            try:
                table = self._arrow(block, columns, handler)
            except pa.ArrowInvalid as exc:
                raise InputError(f"malformed CSV near line {offset + 1}: {one_line(exc)}",
                                 source=str(self.path)) from exc
        self.rows_before += table.num_rows + invalid
        return table

    def _to_utf8(self, block: bytes) -> bytes:
        """The block as UTF-8, each byte the encoding cannot decode marked (``csv_rows``)."""
        try:
            text = codecs.decode(block, self.encoding, "strict")
        except UnicodeDecodeError:
            text = codecs.decode(block, self.encoding, MARK_ERRORS)
            self.marked = True
        else:
            if self.encoding == "utf-8":
                return block  # valid already: no copy
        return text.encode("utf-8")

    def _arrow(self, block: bytes, columns: list[str],
               handler: Callable[[pacsv.InvalidRow], str] | None) -> pa.Table:
        return pacsv.read_csv(
            pa.py_buffer(block),
            read_options=pacsv.ReadOptions(column_names=self.names,
                                           use_threads=handler is None,
                                           block_size=_PARSE_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=self.delimiter,
                                             invalid_row_handler=handler),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns,
                column_types={c: pa.string() for c in columns},
                strings_can_be_null=False,
                check_utf8=False,  # checked (and marked) before
            ),
        )
