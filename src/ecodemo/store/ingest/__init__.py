"""Validated, idempotent ingestion of long-format readings.

Per batch, in one transaction: validate (vectorised with Arrow/NumPy), compare the good rows with
the stored rows of the same sensors and time ranges, binary-COPY the new rows straight into
``readings`` and upsert the changed ones through a staging table (``INSERT ... ON CONFLICT``):
new rows inserted, a changed value updated, an identical row untouched (not even rewritten).
Rows that fail validation go to ``quarantine`` with their reason; the good rows of the same batch
still land. Batches commit independently, so a failure never loses what earlier batches
accepted, and re-running the same input is a no-op. Files are read and validated one batch ahead
in a thread while the server writes the current batch (see ``benchmarks/ingest.py``).

Layout, imports pointing down: ``records`` (sensor info, counts, rejected rows, flag bits) <-
``timestamps`` (ISO 8601 parsing, DST) <- ``validation`` <- ``binary_copy`` <- ``write``
(classify, COPY, upsert, quarantine; the one writer of ``readings`` and ``quarantine``) <-
``csv_source`` (streaming files; ``csv_blocks``: the file in blocks Arrow parses from memory;
``csv_rows``: rows that are not rows, rejected with their line). Imports inside the
package are relative, so ``benchmarks/ingest.py --compare-with`` can load a copy of it.
"""

from .binary_copy import copy_payload, readings_payload, readings_payload_chunks
from .csv_source import REQUIRED_COLUMNS, csv_header, ingest_csv, iter_csv_batches
from .records import (
    CHECK_FLAGS_MASK,
    FLAG_ABOVE_CAPACITY,
    FLAG_DST_REPEATED,
    FLAG_NEGATIVE_NIGHT,
    FLAG_UNIT_CONVERTED,
    PIPELINE_ROWS,
    IngestCounts,
    Rejected,
    SensorInfo,
    load_sensors,
)
from .timestamps import TS_MAX_US, TS_MIN_US
from .validation import DEFAULT_NEGATIVE_POWER_W, ValidatedBatch, validate
from .write import (
    classify,
    delete_listed_readings,
    delete_quarantined,
    ingest_table,
    quarantine_rows,
    refresh_hourly,
    refresh_hourly_span,
    set_check_flags,
    set_retention,
    write_batch,
)

__all__ = [
    "CHECK_FLAGS_MASK", "DEFAULT_NEGATIVE_POWER_W", "FLAG_ABOVE_CAPACITY",
    "FLAG_DST_REPEATED", "FLAG_NEGATIVE_NIGHT", "FLAG_UNIT_CONVERTED", "PIPELINE_ROWS",
    "REQUIRED_COLUMNS", "TS_MAX_US", "TS_MIN_US", "IngestCounts", "Rejected", "SensorInfo",
    "ValidatedBatch", "classify", "copy_payload", "csv_header", "delete_listed_readings",
    "delete_quarantined", "ingest_csv", "ingest_table", "iter_csv_batches", "load_sensors",
    "quarantine_rows", "readings_payload", "readings_payload_chunks", "refresh_hourly",
    "refresh_hourly_span",
    "set_check_flags", "set_retention", "validate", "write_batch",
]
