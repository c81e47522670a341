"""Long-format CSV files (gzip or not) streamed in bounded batches, validated one batch ahead in
a thread while the server writes the current one (see ``benchmarks/ingest.py``)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from pathlib import Path
from typing import TypeVar

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from ecodemo.errors import InputError

from .records import PIPELINE_ROWS, IngestCounts, SensorInfo, load_sensors, one_line
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


def iter_csv_batches(path: Path, batch_rows: int) -> Iterator[tuple[pa.Table, int, float]]:
    """Yield (string table, first line number, fraction of the file read), bounded memory."""
    stream, raw = _open_stream(path)
    size = max(path.stat().st_size, 1)
    try:
        reader = pacsv.open_csv(
            stream,
            # 2 MiB blocks (~45,000 rows): the first batch is ready, and the server busy, sooner.
            read_options=pacsv.ReadOptions(block_size=2 << 20),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in
                              ("timestamp", "site_id", "sensor_id", "value", "unit")},
                strings_can_be_null=False,
            ),
        )
        names = reader.schema.names  # decodes the header: may fail on non-UTF-8 bytes
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:  # OSError: broken gzip
        stream.close()
        raise InputError(f"not a readable CSV file: {one_line(exc)}", source=str(path)) from exc
    id_col = "site_id" if "site_id" in names else "sensor_id"
    missing = [c for c in (*REQUIRED_COLUMNS, id_col) if c not in names]
    if missing:
        stream.close()
        raise InputError(
            f"missing column(s) {', '.join(missing)}; expected timestamp,site_id,value,unit",
            source=str(path), line=1,
        )
    columns = ["timestamp", id_col, "value", "unit"]
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    next_line = 2
    done = False
    while not done:
        try:
            block = reader.read_next_batch()
            rb = pa.RecordBatch.from_arrays([block.column(c) for c in columns], names=columns)
            pending.append(rb)
            pending_rows += rb.num_rows
        except StopIteration:
            done = True
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:  # OSError: broken gzip
            stream.close()
            raise InputError(f"malformed CSV near line {next_line + pending_rows}: "
                             f"{one_line(exc)}", source=str(path)) from exc
        # Exactly batch_rows per batch (the last one smaller): Arrow's blocks do not line up
        # with batches, so the remainder is carried over (zero-copy slices).
        while pending_rows >= batch_rows or (done and pending_rows):
            table = pa.Table.from_batches(pending)
            take = min(batch_rows, pending_rows)
            rest = table.slice(take)
            fraction = 1.0 if done and rest.num_rows == 0 else min(raw.tell() / size, 1.0)
            yield (table.slice(0, take).rename_columns(["timestamp", "site_id", "value", "unit"]),
                   next_line, fraction)
            next_line += take
            pending, pending_rows = rest.to_batches(), rest.num_rows
    stream.close()


def _validated_batches(path: Path, batch_rows: int, sensors: dict[str, SensorInfo]
                       ) -> Iterator[tuple[ValidatedBatch, float]]:
    for table, first_line, fraction in iter_csv_batches(path, batch_rows):
        yield validate(table, sensors, first_line=first_line), fraction


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
