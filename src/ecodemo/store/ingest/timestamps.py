"""Timestamps of incoming rows: ISO 8601 text to microseconds UTC, naive local times localised
with the sensor's time zone (DST gaps rejected, autumn repeats resolved by file order)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_TS_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
_TZ_SUFFIX_RE = r"(Z|[+-]\d{2}(:?\d{2})?)$"
#: Accepted reading times, microseconds since 1970 UTC: [1900-01-01, 2200-01-01).
TS_MIN_US = -2_208_988_800_000_000
TS_MAX_US = 7_258_118_400_000_000
#: Marker of a stamp that could not be parsed (also NaT's int64).
UNPARSED = np.iinfo(np.int64).min


def parse_timestamps(ts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (us since epoch or INT64_MIN, aware mask, well-formed mask).

    Aware stamps are converted to UTC; naive ones are parsed as wall-clock (localised later).
    """
    n = len(ts)
    us = np.full(n, UNPARSED, dtype=np.int64)
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


def localise(naive_us: np.ndarray, tz: str, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray,
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
