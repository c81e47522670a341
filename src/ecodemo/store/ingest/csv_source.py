"""CSV files (gzip or not) streamed in bounded batches, validated one batch ahead in a thread
while the server writes the current one (see ``benchmarks/ingest.py``). Rows that are not rows
(wrong field count, bytes that are not UTF-8) are rejected with their line number and the rest
of the file lands (see ``csv_blocks`` and ``csv_rows``)."""

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

from .csv_blocks import CsvBlocks
from .csv_rows import SkippedLines, not_utf8_rows, structural
from .records import (
    PIPELINE_ROWS,
    IngestCounts,
    Rejected,
    SensorInfo,
    load_sensors,
)
from .validation import ValidatedBatch, validate
from .write import write_batch

log = logging.getLogger("ecodemo.store.ingest")
_T = TypeVar("_T")
REQUIRED_COLUMNS = ("timestamp", "value", "unit")
_NAMES = ["timestamp", "site_id", "value", "unit"]


class CsvBatch(NamedTuple):
    """One batch of a CSV file: string columns (timestamp, site_id, value, unit for the long
    format; else the columns asked for)."""

    table: pa.Table
    first_line: int                  # file line of the first row (the header is line 1)
    fraction: float                  # of the file read so far
    line_numbers: np.ndarray | None  # each row's line, when rows were skipped around them
    rejected: list[Rejected]         # rows that are not rows (field count, bytes)


def csv_header(path: Path, *, delimiter: str = ",", encoding: str = "utf-8") -> list[str]:
    """A CSV file's column names (only its first block is read)."""
    blocks = CsvBlocks(Path(path), delimiter=delimiter, encoding=encoding)
    blocks.close()
    return blocks.names


def iter_csv_batches(path: Path, batch_rows: int, *, delimiter: str = ",",
                     columns: list[str] | None = None, encoding: str = "utf-8"
                     ) -> Iterator[CsvBatch]:
    """Yield batches of at most ``batch_rows`` rows, bounded memory (see CsvBatch).

    ``columns`` None: the long format (``timestamp,site_id|sensor_id,value,unit``, renamed to
    site_id). Otherwise those columns of the file, under their own names (a mapped export).
    A missing column raises :class:`InputError` naming it, before any row is read.
    ``encoding``: the file's (utf-8, latin-1 or cp1252; columns come out as UTF-8 text).
    """
    blocks = CsvBlocks(Path(path), delimiter=delimiter, encoding=encoding)
    try:
        names = blocks.names
        if columns is None:
            id_col = "site_id" if "site_id" in names else "sensor_id"
            wanted, out, id_index = ["timestamp", id_col, "value", "unit"], _NAMES, 1
            missing = [c for c in (*REQUIRED_COLUMNS, id_col) if c not in names]
            expected = "; expected timestamp,site_id,value,unit"
        else:
            wanted, out, id_index = columns, columns, None
            missing = [c for c in columns if c not in names]
            expected = f" (columns: {', '.join(names)[:120]})"
        if missing:
            raise InputError(f"missing column(s) {', '.join(missing)}{expected}",
                             source=str(path), line=1)
        yield from _batches(blocks, wanted, out, batch_rows, id_index)
    finally:
        blocks.close()


def _batches(blocks: CsvBlocks, columns: list[str], names: list[str], batch_rows: int,
             id_index: int | None) -> Iterator[CsvBatch]:
    skipped = SkippedLines()
    rejected: list[Rejected] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        skipped.add(row.number)
        rejected.append(structural(row, delimiter=blocks.delimiter, id_index=id_index))
        return "skip"

    schema = pa.schema([(n, pa.string()) for n in names])
    tables = blocks.tables(columns, on_invalid)
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    next_line = 2
    done = False
    while not done:
        try:
            block = next(tables).select(columns).rename_columns(names)
            pending.extend(block.to_batches())
            pending_rows += block.num_rows
        except StopIteration:
            done = True
        # Exactly batch_rows per batch (the last one smaller): blocks do not line up with
        # batches, so the remainder is carried over (zero-copy slices). Rejected rows travel
        # with the next batch, or alone once there are batch_rows of them.
        while (pending_rows >= batch_rows or len(rejected) >= batch_rows
               or (done and (pending_rows or rejected))):
            table = pa.Table.from_batches(pending, schema=schema)
            take = min(batch_rows, pending_rows)
            rest = table.slice(take)
            fraction = 1.0 if done and rest.num_rows == 0 else blocks.fraction()
            lines = skipped.number(next_line, take)
            if take:
                next_line = int(lines[-1]) + 1
            batch = _batch(table.slice(0, take), lines, blocks, rejected, fraction, id_index)
            rejected = []
            yield batch
            pending, pending_rows = rest.to_batches(), rest.num_rows


def _batch(table: pa.Table, lines: np.ndarray, blocks: CsvBlocks, rejected: list[Rejected],
           fraction: float, id_index: int | None) -> CsvBatch:
    """The batch to yield: rows holding bytes that are not UTF-8 move to ``rejected``."""
    keep, bad_bytes = not_utf8_rows(table.columns, table.column_names, lines, blocks.marked,
                                    delimiter=blocks.delimiter, id_index=id_index,
                                    encoding=blocks.encoding)
    if keep is not None:
        table, lines = table.filter(pa.array(keep)), lines[keep]
    contiguous = len(lines) == 0 or int(lines[-1]) - int(lines[0]) == len(lines) - 1
    first = int(lines[0]) if len(lines) else 0
    return CsvBatch(table, first, fraction, None if contiguous else lines, rejected + bad_bytes)


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
