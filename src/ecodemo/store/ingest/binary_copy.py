"""PostgreSQL binary COPY streams of validated rows, packed with NumPy (no per-row Python).

Built by hand on the hot path: one NumPy structured array per sensor run, one ``tobytes()``
each; ``benchmarks/ingest.py`` compares the whole ingestion with a raw binary COPY.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

from .validation import ValidatedBatch

PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01
#: Row of the binary COPY stream: field count, then (length, value) for each of 4 columns.
_COPY_DTYPE = np.dtype(
    [
        ("nfields", ">i2"),
        ("l_idx", ">i4"), ("idx", ">i4"),
        ("l_ts", ">i4"), ("ts", ">i8"),
        ("l_val", ">i4"), ("val", ">f8"),
        ("l_flags", ">i4"), ("flags", ">i2"),
    ]
)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)


def copy_payload(batch: ValidatedBatch, rows: np.ndarray | None = None) -> bytes:
    """The binary COPY stream for the staging table (built with NumPy, no per-row Python).

    ``rows``: positions of the rows to include (default: all).
    """
    take = np.arange(batch.n_good) if rows is None else rows
    out = np.empty(take.size, dtype=_COPY_DTYPE)
    out["nfields"] = 4
    out["l_idx"], out["l_ts"], out["l_val"], out["l_flags"] = 4, 8, 8, 2
    out["idx"] = batch.idx[take]
    out["ts"] = batch.ts_us[take] - PG_EPOCH_US
    out["val"] = batch.value[take]
    out["flags"] = batch.flags[take]
    return _COPY_HEADER + out.tobytes() + _COPY_TRAILER


def sensor_runs(idx: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """(sensor idx, start, end) of each run of equal ``idx`` in a sorted array."""
    if idx.size == 0:
        return
    cuts = np.flatnonzero(idx[1:] != idx[:-1]) + 1
    starts = np.r_[0, cuts]
    ends = np.r_[cuts, idx.size]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        yield int(idx[a]), a, b


def readings_payload_chunks(batch: ValidatedBatch, rows: np.ndarray) -> Iterator[bytes]:
    """Binary COPY stream for ``readings (sensor_id, ts, value, quality_flags)``, in chunks.

    The text sensor id is a fixed-width field within one sensor's run of rows, so each run is
    one NumPy structured array (one chunk); ``rows`` must be sorted (they are: a subset of a
    sorted batch). Chunks let the server start on one sensor while the next is packed.
    """
    yield _COPY_HEADER
    for i, a, b in sensor_runs(batch.idx[rows]):
        name = batch.sensor_ids[i - 1].encode()
        dtype = np.dtype([
            ("nfields", ">i2"), ("l_sid", ">i4"), ("sid", f"S{len(name)}"),
            ("l_ts", ">i4"), ("ts", ">i8"), ("l_val", ">i4"), ("val", ">f8"),
            ("l_flags", ">i4"), ("flags", ">i2"),
        ])
        take = rows[a:b]
        out = np.empty(take.size, dtype=dtype)
        out["nfields"], out["l_sid"], out["sid"] = 4, len(name), name
        out["l_ts"], out["l_val"], out["l_flags"] = 8, 8, 2
        out["ts"] = batch.ts_us[take] - PG_EPOCH_US
        out["val"] = batch.value[take]
        out["flags"] = batch.flags[take]
        yield out.tobytes()
    yield _COPY_TRAILER


def readings_payload(batch: ValidatedBatch, rows: np.ndarray) -> bytes:
    """The whole stream of :func:`readings_payload_chunks` as one bytes object."""
    return b"".join(readings_payload_chunks(batch, rows))
