"""Long-format CSV files (gzip or not) streamed in bounded batches, validated one batch ahead in
a thread while the server writes the current one (see ``benchmarks/ingest.py``). Rows that are
not rows (wrong field count, bytes that are not UTF-8) are rejected with their line number and
the rest of the file lands (see ``csv_rows``)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from ecodemo.errors import InputError

from .csv_rows import HANDLER_FAILED_RE, MARKED_ENCODING, SkippedLines, as_text, structural
from .records import (
    PIPELINE_ROWS,
    IngestCounts,
    Rejected,
    SensorInfo,
    load_sensors,
    one_line,
)
from .validation import ValidatedBatch, validate
from .write import write_batch

log = logging.getLogger("ecodemo.store.ingest")
_T = TypeVar("_T")
REQUIRED_COLUMNS = ("timestamp", "value", "unit")


def _open_stream(path: Path) -> tuple[pa.NativeFile, pa.OSFile]:
    raw = pa.OSFile(str(path), "rb")
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return pa.CompressedInputStream(raw, "gzip"), raw
    return raw, raw


class CsvBatch(NamedTuple):
    """One batch of a CSV file: string columns timestamp, site_id, value, unit."""

    table: pa.Table
    first_line: int                  # file line of the first row (the header is line 1)
    fraction: float                  # of the file read so far
    line_numbers: np.ndarray | None  # each row's line, when rows were skipped around them
    rejected: list[Rejected]         # rows that are not rows (field count, bytes)


class _ReadAgain(Exception):
    """A row had both a wrong field count and undecodable bytes: re-read in marked mode."""


def iter_csv_batches(path: Path, batch_rows: int) -> Iterator[CsvBatch]:
    """Yield batches of at most ``batch_rows`` rows, bounded memory (see CsvBatch)."""
    delivered = [2, 0]  # first line not delivered yet, last rejected line delivered
    try:
        yield from _read(path, batch_rows, marked=False, delivered=delivered)
    except _ReadAgain:
        log.info("%s: a malformed line holds bytes that are not UTF-8: reading on from line %d "
                 "with those bytes marked", path, delivered[0])
        yield from _read(path, batch_rows, marked=True, delivered=delivered)


def _open_reader(path: Path, marked: bool, on_invalid: Callable[[pacsv.InvalidRow], str]
                 ) -> tuple[pa.NativeFile, pa.OSFile, pacsv.CSVStreamingReader, list[str]]:
    stream, raw = _open_stream(path)
    try:
        reader = pacsv.open_csv(
            stream,
            # 2 MiB blocks (~45,000 rows): the first batch is ready, and the server busy, sooner.
            # One thread: Arrow then numbers the invalid rows it hands to on_invalid.
            read_options=pacsv.ReadOptions(block_size=2 << 20, use_threads=False,
                                           encoding=MARKED_ENCODING if marked else "utf8"),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            # binary, not string: one undecodable byte must reject its row, not the block
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.binary() for c in
                              ("timestamp", "site_id", "sensor_id", "value", "unit")},
                strings_can_be_null=False,
            ),
        )
        names = reader.schema.names  # decodes the header: may fail on non-UTF-8 bytes
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:  # OSError: broken gzip
        stream.close()
        if not marked and HANDLER_FAILED_RE.search(str(exc)):
            raise _ReadAgain from exc
        raise InputError(f"not a readable CSV file: {one_line(exc)}", source=str(path)) from exc
    id_col = "site_id" if "site_id" in names else "sensor_id"
    missing = [c for c in (*REQUIRED_COLUMNS, id_col) if c not in names]
    if missing:
        stream.close()
        raise InputError(
            f"missing column(s) {', '.join(missing)}; expected timestamp,site_id,value,unit",
            source=str(path), line=1,
        )
    return stream, raw, reader, ["timestamp", id_col, "value", "unit"]


def _read(path: Path, batch_rows: int, *, marked: bool, delivered: list[int]
          ) -> Iterator[CsvBatch]:
    skipped = SkippedLines()
    rejected: list[Rejected] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        skipped.add(row.number)
        if row.number > delivered[1]:  # not already delivered before a re-read
            rejected.append(structural(row))
        return "skip"

    stream, raw, reader, columns = _open_reader(path, marked, on_invalid)
    size = max(path.stat().st_size, 1)
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    next_line = 2
    done = False
    while not done:
        try:
            block = reader.read_next_batch()
            rb = pa.RecordBatch.from_arrays([block.column(c) for c in columns], names=_NAMES)
            pending.append(rb)
            pending_rows += rb.num_rows
        except StopIteration:
            done = True
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:  # OSError: broken gzip
            stream.close()
            if not marked and HANDLER_FAILED_RE.search(str(exc)):
                raise _ReadAgain from exc
            raise InputError(f"malformed CSV near line {next_line + pending_rows}: "
                             f"{one_line(exc)}", source=str(path)) from exc
        # Exactly batch_rows per batch (the last one smaller): Arrow's blocks do not line up
        # with batches, so the remainder is carried over (zero-copy slices). Rejected rows
        # travel with the next batch, or alone once there are batch_rows of them.
        while (pending_rows >= batch_rows or len(rejected) >= batch_rows
               or (done and (pending_rows or rejected))):
            table = pa.Table.from_batches(pending, schema=_BINARY_SCHEMA)
            take = min(batch_rows, pending_rows)
            rest = table.slice(take)
            fraction = 1.0 if done and rest.num_rows == 0 else min(raw.tell() / size, 1.0)
            lines = skipped.number(next_line, take)
            if take:
                next_line = int(lines[-1]) + 1
            batch, rejected = _batch(table.slice(0, take), lines, marked, delivered[0],
                                     rejected, fraction)
            delivered[0] = max(delivered[0], next_line)
            delivered[1] = max([delivered[1], *(r.line_no or 0 for r in batch.rejected)])
            yield batch
            pending, pending_rows = rest.to_batches(), rest.num_rows
    stream.close()


_NAMES = ["timestamp", "site_id", "value", "unit"]
_BINARY_SCHEMA = pa.schema([(n, pa.binary()) for n in _NAMES])


def _batch(table: pa.Table, lines: np.ndarray, marked: bool, resume_line: int,
           rejected: list[Rejected], fraction: float) -> tuple[CsvBatch, list[Rejected]]:
    """The batch to yield, and the rejected rows left for later (none)."""
    cols = [table.column(i) for i in range(4)]  # chunked: casting needs no copy
    text, keep, bad_bytes = as_text(cols, _NAMES, lines, marked)
    out = pa.table(text, names=_NAMES)
    if keep is not None:
        out, lines = out.filter(pa.array(keep)), lines[keep]
    if resume_line > 2:  # a re-read: rows delivered before it are not delivered twice
        again = lines >= resume_line
        if not again.all():
            out, lines = out.filter(pa.array(again)), lines[again]
        bad_bytes = [r for r in bad_bytes if (r.line_no or 0) >= resume_line]
    contiguous = len(lines) == 0 or int(lines[-1]) - int(lines[0]) == len(lines) - 1
    first = int(lines[0]) if len(lines) else 0
    return CsvBatch(out, first, fraction, None if contiguous else lines,
                    rejected + bad_bytes), []


def _validated_batches(path: Path, batch_rows: int, sensors: dict[str, SensorInfo]
                       ) -> Iterator[tuple[ValidatedBatch, float]]:
    for b in iter_csv_batches(path, batch_rows):
        batch = validate(b.table, sensors, first_line=b.first_line, line_numbers=b.line_numbers)
        batch.rejected = b.rejected + batch.rejected
        yield batch, b.fraction


def _prefetch(items: Iterator[_T], stop: threading.Event) -> Generator[_T, None, None]:
    """Run ``items`` in a thread, one item ahead of the consumer.

    While the server writes batch k, this thread reads and validates batch k+1 (Arrow and NumPy
    release the GIL), so the two cores work at once. The queue holds one item, so at most three
    batches are alive (being validated, queued, being written): memory stays bounded.
    """
    q: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=1)

    def put(message: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                q.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the consumer has gone away

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            put(("error", exc))

    worker = threading.Thread(target=produce, name="ecodemo-validate", daemon=True)
    worker.start()
    try:
        while True:
            kind, payload = q.get()
            if kind == "done":
                return
            if kind == "error":
                assert isinstance(payload, BaseException)
                raise payload
            yield payload  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


def ingest_csv(conn: psycopg.Connection, path: Path, *, batch_rows: int = 500_000,
               progress: Callable[[float, IngestCounts], None] | None = None,
               pipeline_rows: int = PIPELINE_ROWS) -> IngestCounts:
    """Ingest a long-format CSV (``timestamp,site_id,value,unit``; gzip or not).

    Rows are read, validated and written in batches of ``min(batch_rows, pipeline_rows)``, each
    in its own transaction; validation of the next batch overlaps the writing of the current one.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=str(path))
    sensors = load_sensors(conn)
    total = IngestCounts()
    t0 = time.perf_counter()
    source = str(path.resolve())
    rows = max(1, min(batch_rows, pipeline_rows))
    stop = threading.Event()
    with closing(_prefetch(_validated_batches(path, rows, sensors), stop)) as batches:
        for batch, fraction in batches:
            total.add(write_batch(conn, batch, source))
            if progress:
                progress(fraction, total)
    total.seconds = time.perf_counter() - t0
    log.debug("ingested %s: %s in %.2f s", path.name, total.summary(), total.seconds)
    return total
