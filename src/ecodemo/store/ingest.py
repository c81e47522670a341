"""Validated, idempotent ingestion of long-format readings.

Per batch, in one transaction: validate (vectorised with Arrow/NumPy), compare the good rows with
the stored rows of the same sensors and time ranges, binary-COPY the new rows straight into
``readings`` and upsert the changed ones through a staging table (``INSERT ... ON CONFLICT``):
new rows inserted, a changed value updated, an identical row untouched (not even rewritten).
Rows that fail validation go to ``quarantine`` with their reason; the good rows of the same batch
still land. Batches commit independently, so a failure never loses what earlier batches
accepted, and re-running the same input is a no-op. Files are read and validated one batch ahead
in a thread while the server writes the current batch (see ``benchmarks/ingest.py``).
"""

from __future__ import annotations

import logging
import queue
import struct
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ecodemo import units
from ecodemo.errors import DatabaseError, InputError

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Rows per transaction when ingesting a file. Smaller than the memory bound (batch_rows) so that
#: validating batch k+1 overlaps writing batch k; measured in benchmarks/ingest.py.
PIPELINE_ROWS = 100_000

# quality_flags bits (see quality_flag_names in 001_core.sql)
FLAG_NEGATIVE_NIGHT = 1
FLAG_UNIT_CONVERTED = 2
FLAG_DST_REPEATED = 4
FLAG_ABOVE_CAPACITY = 32

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01
_NUMBER_RE = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
_TS_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
_TZ_SUFFIX_RE = r"(Z|[+-]\d{2}(:?\d{2})?)$"
_TS_AWARE_RE = r"T?\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?" + _TZ_SUFFIX_RE
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
REQUIRED_COLUMNS = ("timestamp", "value", "unit")
#: Accepted reading times, microseconds since 1970 UTC: [1900-01-01, 2200-01-01).
TS_MIN_US = -2_208_988_800_000_000
TS_MAX_US = 7_258_118_400_000_000
#: Without a declared capacity, small negative power down to this (in W) is kept and flagged.
DEFAULT_NEGATIVE_POWER_W = 5e6


@dataclass(frozen=True)
class SensorInfo:
    sensor_id: str
    kind: str
    unit: str
    timezone: str
    capacity: float | None


@dataclass
class IngestCounts:
    """What an ingestion did. ``read`` = inserted + updated + unchanged + quarantined."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, other: IngestCounts) -> None:
        self.read += other.read
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.quarantined += other.quarantined
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.read:,} rows read: {self.inserted:,} inserted, {self.updated:,} updated, "
            f"{self.unchanged:,} unchanged, {self.quarantined:,} quarantined"
        )


@dataclass
class Rejected:
    line_no: int | None
    sensor_id: str | None
    raw: str
    reason: str


def load_sensors(conn: psycopg.Connection) -> dict[str, SensorInfo]:
    """The sensor catalogue as stored, keyed by sensor_id."""
    rows = conn.execute(
        """SELECT s.sensor_id, s.kind, s.unit, s.timezone, si.capacity
           FROM sensors s JOIN sites si USING (site_id)"""
    ).fetchall()
    return {r[0]: SensorInfo(r[0], r[1], r[2], r[3], r[4]) for r in rows}


# --------------------------------------------------------------------------- validation


@dataclass
class ValidatedBatch:
    """Good rows sorted by (sensor_id, ts), ready for COPY, plus the rejected rows."""

    sensor_ids: list[str]          # 1-based ``idx`` refers into this list
    idx: np.ndarray                 # int32
    ts_us: np.ndarray               # int64 microseconds since 1970 UTC
    value: np.ndarray               # float64, in the sensor's unit
    flags: np.ndarray               # int16
    rejected: list[Rejected]

    @property
    def n_good(self) -> int:
        return int(self.idx.shape[0])


def _strings(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))


def _sensor_dimension(info: SensorInfo | None) -> str:
    """The dimension of a sensor's stored unit; "" for none or one no longer parseable."""
    if info is None or units.problem(info.unit) is not None:
        return ""
    return units.dimension(info.unit)


def _watts_per_unit(info: SensorInfo | None) -> float:
    if info is None or _sensor_dimension(info) != "power":
        return 1.0
    return units.parse(info.unit).to_base


def _parse_values(values: pa.Array) -> np.ndarray:
    """Strings to float64; NaN where not a number (validated with a regex before the cast)."""
    n = len(values)
    out = np.full(n, np.nan)
    ok = pc.fill_null(pc.match_substring_regex(values, _NUMBER_RE), False).to_numpy(
        zero_copy_only=False
    )
    if ok.any():
        out[ok] = pc.cast(pc.filter(values, pa.array(ok)), pa.float64()).to_numpy(
            zero_copy_only=False
        )
    return out


def _parse_timestamps(ts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (us since epoch or INT64_MIN, aware mask, well-formed mask).

    Aware stamps are converted to UTC; naive ones are parsed as wall-clock (localised later).
    """
    n = len(ts)
    us = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    well_formed = pc.fill_null(pc.match_substring_regex(ts, _TS_RE), False).to_numpy(
        zero_copy_only=False
    )
    aware = pc.fill_null(pc.match_substring_regex(ts, _TZ_SUFFIX_RE), False).to_numpy(
        zero_copy_only=False
    ) & well_formed
    # A date-only "2020-01-01-05" would match the suffix regex; require a time part for aware.
    for mask, target in ((aware, pa.timestamp("us", tz="UTC")),
                         (well_formed & ~aware, pa.timestamp("us"))):
        if not mask.any():
            continue
        sub = pc.filter(ts, pa.array(mask))
        # Arrow wants 'T' between date and time; accept a space as ISO 8601 allows. In a
        # well-formed, trimmed stamp a space can only be that separator (a literal replace is
        # ~10x cheaper than a regex, and skipped when no stamp has one).
        if pc.any(pc.match_substring(sub, " ")).as_py():
            sub = pc.replace_substring(sub, " ", "T", max_replacements=1)
        try:
            parsed = pc.cast(sub, target).cast(pa.int64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, OverflowError):
            # A well-formed but impossible stamp (month 13...) or one beyond the int64
            # microsecond range (year 0000 with an offset): parse with pandas, NaT where it
            # cannot; NaT's int64 is INT64_MIN, the "unparsed" marker.
            parsed_series = pd.to_datetime(
                pd.Series(sub.to_pylist(), dtype=object), format="ISO8601", errors="coerce",
                utc=target.tz is not None,
            )
            parsed = np.asarray(pd.DatetimeIndex(parsed_series).as_unit("us").asi8,
                                dtype=np.int64)
        us[mask] = parsed
    return us, aware, well_formed


def _localise(naive_us: np.ndarray, tz: str, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                         list[str | None]]:
    """Localise naive wall-clock stamps in ``tz``; DST gaps and repeats handled explicitly.

    A nonexistent time (spring gap) is rejected. An ambiguous time (autumn repeat) seen exactly
    twice for the same sensor takes summer time first and winter time second (file order);
    seen once, it is rejected because nothing tells which of the two hours it is.
    Returns (utc us, dst_repeated flag, reason per row or None).
    """
    idx = pd.DatetimeIndex(naive_us.astype("datetime64[us]")).as_unit("ns")
    as_dst = idx.tz_localize(tz, ambiguous=np.ones(len(idx), bool), nonexistent="NaT")
    as_std = idx.tz_localize(tz, ambiguous=np.zeros(len(idx), bool), nonexistent="NaT")
    nonexistent = np.asarray(as_dst.isna())
    ambiguous = ~nonexistent & (np.asarray(as_dst.asi8) != np.asarray(as_std.asi8))
    out = np.asarray(as_std.asi8, dtype=np.int64) // 1000
    reasons: list[str | None] = [None] * len(idx)
    repeated = np.zeros(len(idx), bool)
    for i in np.flatnonzero(nonexistent):
        reasons[i] = f"nonexistent local time in {tz} (DST gap)"
    if ambiguous.any():
        amb_pos = np.flatnonzero(ambiguous)
        frame = pd.DataFrame({"key": keys[amb_pos], "t": naive_us[amb_pos]})
        occurrence = frame.groupby(["key", "t"]).cumcount().to_numpy()
        count = frame.groupby(["key", "t"])["t"].transform("size").to_numpy()
        dst_us = np.asarray(as_dst.asi8, dtype=np.int64) // 1000
        for j, pos in enumerate(amb_pos):
            if count[j] == 2:
                out[pos] = dst_us[pos] if occurrence[j] == 0 else out[pos]
                repeated[pos] = True
            else:
                reasons[pos] = (
                    f"ambiguous local time in {tz} (DST repeat) seen {count[j]} time(s); "
                    "give an offset"
                )
    return out, repeated, reasons


class _Reasons:
    """Why each row was rejected, as a small int code per row (0 = good) plus the texts.

    Int codes instead of an object array keep validation vectorised: per-row texts are only
    built for the (usually few) rejected rows. The first reason found for a row wins.
    """

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, dtype=np.int32)
        self.texts: list[str] = [""]

    @property
    def ok(self) -> np.ndarray:
        return self.code == 0

    def reject(self, mask: np.ndarray, why: str) -> None:
        todo = mask & (self.code == 0)
        if todo.any():
            self.texts.append(why)
            self.code[todo] = len(self.texts) - 1

    def reject_grouped(self, mask: np.ndarray, group: np.ndarray,
                       why: list[str | None]) -> None:
        """Reject ``mask`` rows with the text of their group (``why[group]``; None = keep)."""
        codes = np.zeros(len(why), dtype=np.int32)
        for g, text in enumerate(why):
            if text is not None:
                self.texts.append(text)
                codes[g] = len(self.texts) - 1
        todo = mask & (self.code == 0)
        if todo.any():
            self.code[todo] = codes[group[todo]]

    def reject_rows(self, positions: np.ndarray, why: list[str]) -> None:
        for pos, text in zip(positions.tolist(), why, strict=True):
            if self.code[pos] == 0:
                self.texts.append(text)
                self.code[pos] = len(self.texts) - 1


def validate(table: pa.Table, sensors: dict[str, SensorInfo], *, first_line: int = 2,
             id_column: str = "site_id") -> ValidatedBatch:
    """Validate a batch of long-format rows (string columns). Pure: no database access.

    ``first_line`` is the file line of the batch's first row (header is line 1).
    """
    n = table.num_rows
    ts_s = _strings(table.column("timestamp"))
    sid_s = _strings(table.column(id_column))
    val_s = _strings(table.column("value"))
    unit_s = _strings(table.column("unit"))
    why = _Reasons(n)

    # sensor: per distinct id (dictionary-encoded), never per row
    sid_dict = pc.dictionary_encode(pc.fill_null(sid_s, ""))
    uniq_sids: list[str] = sid_dict.dictionary.to_pylist()
    sid_codes = sid_dict.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    infos = [sensors.get(s) for s in uniq_sids]
    known = np.array([i is not None for i in infos], dtype=bool)
    why.reject_grouped(
        ~known[sid_codes], sid_codes,
        [None if i is not None else (f"unknown sensor '{s}'" if s else "missing sensor id")
         for s, i in zip(uniq_sids, infos, strict=True)])

    # value
    values = _parse_values(val_s)
    bad_value = ~np.isfinite(values) & why.ok
    if bad_value.any():
        pos = np.flatnonzero(bad_value)
        raw_vals = val_s.take(pa.array(pos)).to_pylist()
        why.reject_rows(pos, [f"value '{v}' is not a finite number" if v not in (None, "")
                              else "missing value" for v in raw_vals])

    # unit: conversion factor per distinct (unit, sensor) pair
    unit_dict = pc.dictionary_encode(pc.fill_null(unit_s, ""))
    uniq_units: list[str] = unit_dict.dictionary.to_pylist()
    unit_codes = unit_dict.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    n_sids = max(len(uniq_sids), 1)
    pair_codes, pair = np.unique(unit_codes * n_sids + sid_codes, return_inverse=True)
    pair_factor = np.ones(len(pair_codes))
    pair_why: list[str | None] = []
    for j, p in enumerate(pair_codes.tolist()):
        u, info = uniq_units[p // n_sids], infos[p % n_sids]
        # units caches the parse per spelling: pint runs once per distinct unit string
        unit_why = None if info is None else units.conversion_problem(u, info.unit)
        pair_why.append(unit_why)
        if info is not None and unit_why is None:
            pair_factor[j] = units.factor(u, info.unit)
    why.reject_grouped(np.ones(n, bool), pair, pair_why)
    factors = pair_factor[pair]
    values = values * factors
    flags = np.where(factors != 1.0, FLAG_UNIT_CONVERTED, 0).astype(np.int16)

    # timestamp
    ts_us, aware, well_formed = _parse_timestamps(ts_s)
    if not well_formed.all():
        pos = np.flatnonzero(~well_formed)
        raw_ts = ts_s.take(pa.array(pos)).to_pylist()
        why.reject_rows(pos, [f"timestamp '{t}' is not ISO 8601" if t else "missing timestamp"
                              for t in raw_ts])
    unparsed = well_formed & (ts_us == np.iinfo(np.int64).min)
    why.reject(unparsed, "timestamp is not a valid date/time")
    # Outside these years a stamp is a typo, and naive ones could not be localised (pandas
    # works in nanoseconds: years 1677-2262).
    out_of_range = well_formed & ~unparsed & ((ts_us < TS_MIN_US) | (ts_us >= TS_MAX_US))
    why.reject(out_of_range, "timestamp outside the years 1900-2199")
    naive = well_formed & ~aware & ~unparsed & ~out_of_range & known[sid_codes]
    if naive.any():
        tz_of = np.array([i.timezone if i is not None else "UTC" for i in infos], dtype=object)
        row_tz = tz_of[sid_codes]
        for tz in np.unique(row_tz[naive]):
            pos = np.flatnonzero(naive & (row_tz == tz))
            local_us, repeated, tz_why = _localise(ts_us[pos], str(tz), sid_codes[pos])
            ts_us[pos] = local_us
            flags[pos[repeated]] |= FLAG_DST_REPEATED
            bad = [j for j, w in enumerate(tz_why) if w is not None]
            if bad:
                why.reject_rows(pos[bad], [str(tz_why[j]) for j in bad])

    # plausibility by kind and dimension, with per-sensor limits looked up per row
    dim_of = [_sensor_dimension(i) for i in infos]
    dim = np.array(dim_of, dtype=object)[sid_codes] if n else np.array([], dtype=object)
    max_of = [units.count_max(i.unit) if d.startswith("count") and i is not None else None
              for d, i in zip(dim_of, infos, strict=True)]
    is_count = np.array([m is not None for m in max_of], dtype=bool)[sid_codes]
    count_max = np.array([np.inf if m is None else m for m in max_of])[sid_codes]
    why.reject_grouped(is_count & (values < 0), sid_codes,
                       [f"negative count for a {i.kind} sensor" if i is not None else None
                        for i in infos])
    why.reject_grouped(is_count & (values > count_max), sid_codes,
                       [f"implausible count (> {m:,.0f} {i.unit})" if m is not None and i
                        else None for m, i in zip(max_of, infos, strict=True)])
    why.reject((dim == "ratio_pct") & ((values < 0) | (values > 100)),
               "percentage outside 0-100")
    is_power = dim == "power"
    if is_power.any():
        caps = [i.capacity if i is not None and i.capacity else np.nan for i in infos]
        cap = np.array(caps)[sid_codes]
        tol = np.array([0.02 * c if c == c else DEFAULT_NEGATIVE_POWER_W / _watts_per_unit(i)
                        if i is not None else np.inf for c, i in zip(caps, infos, strict=True)]
                       )[sid_codes]
        ok_power = is_power & why.ok
        flags[ok_power & (values < 0) & (values >= -tol)] |= FLAG_NEGATIVE_NIGHT
        why.reject(is_power & (values < -tol), "negative power beyond the night-time tolerance")
        has_cap = ~np.isnan(cap)
        flags[ok_power & has_cap & (values > cap) & (values <= 1.1 * cap)] |= FLAG_ABOVE_CAPACITY
        why.reject_grouped(
            is_power & has_cap & (values > 1.1 * cap), sid_codes,
            [f"power above 110 % of the capacity {i.capacity:g} {i.unit}"
             if i is not None and i.capacity else None for i in infos])

    # Sort good rows by (sensor id in byte order, ts): concurrent batches then take row locks
    # in the same order (no deadlock between overlapping ingests), and duplicates are adjacent.
    ok = why.ok
    used = sorted({uniq_sids[c] for c in np.unique(sid_codes[ok]).tolist()})
    rank = {s: i + 1 for i, s in enumerate(used)}
    code_to_idx = np.array([rank.get(s, 0) for s in uniq_sids], dtype=np.int32)
    good_pos = np.flatnonzero(ok)
    order = good_pos[np.lexsort((ts_us[good_pos], code_to_idx[sid_codes[good_pos]]))]
    # duplicates within the batch: lexsort is stable, so the last of a run is the last in the
    # file; keep it, quarantine the earlier ones
    if order.size > 1:
        g_idx, g_ts = code_to_idx[sid_codes[order]], ts_us[order]
        dup = (g_idx[1:] == g_idx[:-1]) & (g_ts[1:] == g_ts[:-1])
        if dup.any():
            why.reject(np.isin(np.arange(n), order[:-1][dup]),
                       "duplicate sensor and timestamp in the same batch (later row kept)")
            order = order[np.r_[~dup, True]]

    rejected: list[Rejected] = []
    bad_pos = np.flatnonzero(~why.ok)
    if bad_pos.size:
        take = pa.array(bad_pos)
        cols = [c.take(take).to_pylist() for c in (ts_s, sid_s, val_s, unit_s)]
        codes = why.code[bad_pos].tolist()
        for j, bpos in enumerate(bad_pos.tolist()):
            raw = ",".join("" if c[j] is None else str(c[j]) for c in cols)
            rejected.append(Rejected(first_line + bpos, cols[1][j] or None, raw,
                                     why.texts[codes[j]]))
    return ValidatedBatch(used, code_to_idx[sid_codes[order]], ts_us[order], values[order],
                          flags[order], rejected)


# --------------------------------------------------------------------------- writing
#
# Per batch, in one transaction:
#   1. fetch the stored rows of the batch's (sensor, [first ts, last ts]) ranges, packed by the
#      server into one bytea per sensor (an index range scan; nothing when the range is empty);
#   2. classify each validated row on the client with NumPy: new, changed or unchanged;
#   3. new rows: binary COPY straight into ``readings`` (as fast as a raw COPY), inside a
#      savepoint. If a concurrent ingest inserted some of them meanwhile, the unique key makes
#      the COPY fail; the savepoint is rolled back and those rows take the upsert path;
#   4. changed rows (and new rows whose COPY lost a race): binary COPY into a temporary staging
#      table, then one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE value IS DISTINCT`` that
#      counts what it inserted and updated. Unchanged rows are never written, so a re-ingest of
#      unchanged data only reads.
# Rows are sorted by (sensor, ts) in every statement, so overlapping ingests lock rows in the
# same order; a deadlock or serialisation failure retries the whole batch.

# LATERAL: one index range scan per sensor, whatever else the table holds (a plain join let
# the planner hash-join a sequential scan of all readings). Bounds are exact timestamptz values.
_FETCH_EXISTING = """
SELECT q.i::int4, s.n, s.packed
FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[])
     WITH ORDINALITY AS q(sensor_id, lo, hi, i)
CROSS JOIN LATERAL (
    SELECT count(*) AS n,
           string_agg(timestamptz_send(r.ts) || float8send(r.value)
                      || int2send(r.quality_flags), ''::bytea) AS packed
    FROM readings r
    WHERE r.sensor_id = q.sensor_id AND r.ts BETWEEN q.lo AND q.hi) s
WHERE s.n > 0
"""
#: One stored row as packed by _FETCH_EXISTING: ts (us since 2000), value, quality_flags.
_STORED_DTYPE = np.dtype([("ts", ">i8"), ("val", ">f8"), ("flags", ">i2")])

#: Bits set later by the sensor quality checks (spike 8, flat_line 16, unit_suspect 64,
#: impossible 128): re-ingesting an identical value keeps them (and counts as unchanged); a
#: corrected value clears them until the next check.
CHECK_FLAGS_MASK = 8 | 16 | 64 | 128

_UPSERT = """
WITH up AS (
    INSERT INTO readings (sensor_id, ts, value, quality_flags)
    SELECT (%s::text[])[s.sensor_idx], s.ts, s.value, s.flags FROM _ecodemo_stage s
    ON CONFLICT (sensor_id, ts) DO UPDATE
        SET value = EXCLUDED.value,
            quality_flags = EXCLUDED.quality_flags | CASE
                WHEN readings.value IS DISTINCT FROM EXCLUDED.value THEN 0
                ELSE readings.quality_flags & 216 END,  -- CHECK_FLAGS_MASK
            ingested_at = now()
        WHERE readings.value IS DISTINCT FROM EXCLUDED.value
           OR (readings.quality_flags & ~216)
              IS DISTINCT FROM EXCLUDED.quality_flags
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
"""
assert CHECK_FLAGS_MASK == 216, "update the literal in _UPSERT"


def copy_payload(batch: ValidatedBatch, rows: np.ndarray | None = None) -> bytes:
    """The binary COPY stream for the staging table (built with NumPy, no per-row Python).

    ``rows``: positions of the rows to include (default: all).
    """
    take = np.arange(batch.n_good) if rows is None else rows
    out = np.empty(take.size, dtype=_COPY_DTYPE)
    out["nfields"] = 4
    out["l_idx"], out["l_ts"], out["l_val"], out["l_flags"] = 4, 8, 8, 2
    out["idx"] = batch.idx[take]
    out["ts"] = batch.ts_us[take] - _PG_EPOCH_US
    out["val"] = batch.value[take]
    out["flags"] = batch.flags[take]
    return _COPY_HEADER + out.tobytes() + _COPY_TRAILER


def _groups(idx: np.ndarray) -> Iterator[tuple[int, int, int]]:
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
    for i, a, b in _groups(batch.idx[rows]):
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
        out["ts"] = batch.ts_us[take] - _PG_EPOCH_US
        out["val"] = batch.value[take]
        out["flags"] = batch.flags[take]
        yield out.tobytes()
    yield _COPY_TRAILER


def readings_payload(batch: ValidatedBatch, rows: np.ndarray) -> bytes:
    """The whole stream of :func:`readings_payload_chunks` as one bytes object."""
    return b"".join(readings_payload_chunks(batch, rows))


def classify(conn: psycopg.Connection, batch: ValidatedBatch) -> tuple[np.ndarray, np.ndarray]:
    """Compare a batch with what is stored: (new rows mask, changed rows mask).

    Reads only the stored rows within each sensor's [first, last] timestamp of the batch.
    """
    new = np.ones(batch.n_good, dtype=bool)
    changed = np.zeros(batch.n_good, dtype=bool)
    groups = list(_groups(batch.idx))
    if not groups:
        return new, changed
    names = [batch.sensor_ids[i - 1] for i, _, _ in groups]
    lo = [_EPOCH + timedelta(microseconds=int(batch.ts_us[a])) for _, a, _ in groups]
    hi = [_EPOCH + timedelta(microseconds=int(batch.ts_us[b - 1])) for _, _, b in groups]
    cur = conn.cursor(binary=True)
    for g, count, packed in cur.execute(_FETCH_EXISTING, (names, lo, hi)):
        _, a, b = groups[g - 1]
        stored = np.frombuffer(packed, dtype=_STORED_DTYPE, count=count)
        stored = stored[np.argsort(stored["ts"], kind="stable")]
        ts = batch.ts_us[a:b] - _PG_EPOCH_US
        pos = np.minimum(np.searchsorted(stored["ts"], ts), count - 1)
        hit = stored["ts"][pos] == ts
        # Bits the quality checks set later are not the source's: ignore them, as _UPSERT does.
        same = hit & (stored["val"][pos] == batch.value[a:b]) \
            & ((stored["flags"][pos] & ~CHECK_FLAGS_MASK) == batch.flags[a:b])
        new[a:b] = ~hit
        changed[a:b] = hit & ~same
    return new, changed


def _upsert_rows(conn: psycopg.Connection, batch: ValidatedBatch, rows: np.ndarray
                 ) -> tuple[int, int]:
    """Staging COPY + one upsert for ``rows``; returns (inserted, updated). In caller's txn."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS _ecodemo_stage (sensor_idx int4, "
        "ts timestamptz, value float8, flags int2) ON COMMIT DELETE ROWS"
    )
    conn.execute("TRUNCATE _ecodemo_stage")
    with conn.cursor().copy("COPY _ecodemo_stage FROM STDIN (FORMAT BINARY)") as cp:
        cp.write(copy_payload(batch, rows))
    row = conn.execute(_UPSERT, (batch.sensor_ids,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _copy_new_rows(conn: psycopg.Connection, batch: ValidatedBatch, rows: np.ndarray) -> bool:
    """COPY rows believed new straight into readings; False if one exists (lost a race)."""
    try:
        with conn.transaction(), conn.cursor().copy(
            "COPY readings (sensor_id, ts, value, quality_flags) FROM STDIN (FORMAT BINARY)"
        ) as cp:
            for chunk in readings_payload_chunks(batch, rows):
                cp.write(chunk)
    except psycopg.errors.UniqueViolation:
        return False
    return True


def quarantine_rows(conn: psycopg.Connection, source: str, rejected: list[Rejected]) -> int:
    """Store rejected rows (idempotent on source, line, raw row and reason). In caller's txn."""
    if not rejected:
        return 0
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS _ecodemo_qstage (line_no bigint, sensor_id text, "
        "raw text, reason text) ON COMMIT DELETE ROWS"
    )
    with conn.cursor().copy("COPY _ecodemo_qstage FROM STDIN") as cp:
        for r in rejected:
            # Text COPY cannot carry NUL bytes; keep everything else as it came.
            cp.write_row((r.line_no, r.sensor_id and r.sensor_id.replace("\x00", "\\0"),
                          r.raw.replace("\x00", "\\0"), r.reason.replace("\x00", "\\0")))
    conn.execute(
        "INSERT INTO quarantine (source, line_no, sensor_id, raw, reason) "
        "SELECT %s, line_no, sensor_id, raw, reason FROM _ecodemo_qstage "
        "ON CONFLICT (row_key) DO NOTHING",
        (source,),
    )
    return len(rejected)


def write_batch(conn: psycopg.Connection, batch: ValidatedBatch, source: str,
                *, retries: int = 5) -> IngestCounts:
    """Write one validated batch and quarantine its rejects, in one transaction."""
    counts = IngestCounts(read=batch.n_good + len(batch.rejected))
    inserted = updated = 0
    for attempt in range(retries):
        try:
            with conn.transaction():
                inserted = updated = 0
                if batch.n_good:
                    new, changed = classify(conn, batch)
                    slow = changed
                    if new.any():
                        if _copy_new_rows(conn, batch, np.flatnonzero(new)):
                            inserted = int(new.sum())
                        else:
                            slow = changed | new
                    if slow.any():
                        ins, updated = _upsert_rows(conn, batch, np.flatnonzero(slow))
                        inserted += ins
                quarantine_rows(conn, source, batch.rejected)
            break
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
            if attempt == retries - 1:
                raise
            time.sleep(0.05 * (2**attempt))
        except psycopg.OperationalError as exc:
            # libpq's messages span lines ("server closed the connection unexpectedly\n\tThis
            # probably means..."): the CLI prints one line, so fold them.
            raise DatabaseError(f"ingestion of {source} interrupted: {_one_line(exc)}") from exc
    counts.inserted, counts.updated = inserted, updated
    counts.unchanged = batch.n_good - inserted - updated
    counts.quarantined = len(batch.rejected)
    for r in batch.rejected:
        key = r.reason.split("'")[0].strip() if "'" in r.reason else r.reason
        counts.reasons[key] = counts.reasons.get(key, 0) + 1
    return counts


def ingest_table(conn: psycopg.Connection, table: pa.Table, source: str,
                 sensors: dict[str, SensorInfo] | None = None, *, first_line: int = 2,
                 id_column: str = "site_id") -> IngestCounts:
    """Validate and write an in-memory long-format table (used by connectors)."""
    if sensors is None:
        sensors = load_sensors(conn)
    t0 = time.perf_counter()
    counts = write_batch(conn, validate(table, sensors, first_line=first_line,
                                        id_column=id_column), source)
    counts.seconds = time.perf_counter() - t0
    return counts


# --------------------------------------------------------------------------- CSV files


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (the CLI prints one line per error)."""
    return " ".join(str(exc).split()) or type(exc).__name__


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
        raise InputError(f"not a readable CSV file: {_one_line(exc)}", source=str(path)) from exc
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
                             f"{_one_line(exc)}", source=str(path)) from exc
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
