"""Validation of a batch of long-format rows, vectorised with Arrow and NumPy. Pure: no I/O.

Each row is checked for its sensor, value, unit (converted to the sensor's), timestamp (see
:mod:`.timestamps`) and plausibility; rejected rows keep their line number and reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ecodemo import units

from .records import (
    FLAG_ABOVE_CAPACITY,
    FLAG_DST_REPEATED,
    FLAG_NEGATIVE_NIGHT,
    FLAG_UNIT_CONVERTED,
    Rejected,
    SensorInfo,
)
from .timestamps import TS_MAX_US, TS_MIN_US, UNPARSED, localise, parse_timestamps

_NUMBER_RE = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
# A decimal comma (80,5), digits grouped by threes with spaces (1 234,5; also the no-break and
# narrow no-break spaces): never a dot, which could be either mark, nor an exponent.
_SPACES = "[ \u00a0\u202f]"
_COMMA_NUMBER_RE = (r"^\s*[-+]?(\d{1,3}(" + _SPACES + r"\d{3})+|\d+)(,\d+)?\s*$")
#: Without a declared capacity, small negative power down to this (in W) is kept and flagged.
DEFAULT_NEGATIVE_POWER_W = 5e6


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


def _parse_values(values: pa.Array, decimal: str = ".") -> np.ndarray:
    """Strings to float64; NaN where not a number (validated with a regex before the cast).
    ``decimal`` ",": numbers as a decimal-comma export writes them (``_COMMA_NUMBER_RE``)."""
    n = len(values)
    out = np.full(n, np.nan)
    ok = pc.fill_null(pc.match_substring_regex(
        values, _NUMBER_RE if decimal == "." else _COMMA_NUMBER_RE), False).to_numpy(
        zero_copy_only=False
    )
    if ok.any():
        good = pc.filter(values, pa.array(ok))
        if decimal == ",":
            good = pc.replace_substring(pc.replace_substring_regex(
                pc.utf8_trim_whitespace(good), _SPACES, ""), ",", ".")
        out[ok] = pc.cast(good, pa.float64()).to_numpy(zero_copy_only=False)
    return out



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
             id_column: str = "site_id", line_numbers: np.ndarray | None = None,
             decimal: str = ".", timestamp_format: str | None = None,
             timezone: str | None = None) -> ValidatedBatch:
    """Validate a batch of long-format rows (string columns). Pure: no database access.

    ``first_line`` is the file line of the batch's first row (header is line 1);
    ``line_numbers``, when given, is each row's line (rows skipped before it shift them).
    ``decimal``: the values' decimal mark; ``timestamp_format``: the format the caller parsed
    the stamps with (a stamp left unparsed is said not to match it); ``timezone``: localises
    naive stamps instead of each sensor's time zone.
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
    values = _parse_values(val_s, decimal)
    bad_value = ~np.isfinite(values) & why.ok
    if bad_value.any():
        pos = np.flatnonzero(bad_value)
        raw_vals = val_s.take(pa.array(pos)).to_pylist()
        not_number = "is not a finite number" if decimal == "." else \
            "is not a number with a decimal comma (decimal: ',')"
        why.reject_rows(pos, [f"value '{v}' {not_number}" if v not in (None, "")
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
    ts_us, aware, well_formed = parse_timestamps(ts_s)
    if not well_formed.all():
        pos = np.flatnonzero(~well_formed)
        raw_ts = ts_s.take(pa.array(pos)).to_pylist()
        not_stamp = "is not ISO 8601" if timestamp_format is None else \
            f"does not parse with timestamp_format '{timestamp_format}'"
        why.reject_rows(pos, [f"timestamp '{t}' {not_stamp}" if t else "missing timestamp"
                              for t in raw_ts])
    unparsed = well_formed & (ts_us == UNPARSED)
    why.reject(unparsed, "timestamp is not a valid date/time")
    # Outside these years a stamp is a typo, and naive ones could not be localised (pandas
    # works in nanoseconds: years 1677-2262).
    out_of_range = well_formed & ~unparsed & ((ts_us < TS_MIN_US) | (ts_us >= TS_MAX_US))
    why.reject(out_of_range, "timestamp outside the years 1900-2199")
    naive = well_formed & ~aware & ~unparsed & ~out_of_range & known[sid_codes]
    if naive.any():
        tz_of = np.array([timezone or i.timezone if i is not None else "UTC" for i in infos],
                         dtype=object)
        row_tz = tz_of[sid_codes]
        for tz in np.unique(row_tz[naive]):
            pos = np.flatnonzero(naive & (row_tz == tz))
            local_us, repeated, tz_why = localise(ts_us[pos], str(tz), sid_codes[pos])
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
            line = first_line + bpos if line_numbers is None else int(line_numbers[bpos])
            rejected.append(Rejected(line, cols[1][j] or None, raw,
                                     why.texts[codes[j]]))
    return ValidatedBatch(used, code_to_idx[sid_codes[order]], ts_us[order], values[order],
                          flags[order], rejected)
