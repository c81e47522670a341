"""How a series repeats: its time step, and the season of the seasonal-naive baseline.

The one place both questions are answered (the quality checks, the models' grids, the live
evaluation in SQL and the baselines all ask them).
"""

from __future__ import annotations

import pandas as pd

from ecodemo.units import KINDS, RENEWABLE_KINDS


def infer_step(times: pd.DatetimeIndex | pd.Series) -> pd.Timedelta | None:
    """The most common positive spacing between consecutive distinct times (any order);
    None with fewer than two distinct times."""
    values = pd.Series(pd.DatetimeIndex(times)).drop_duplicates().sort_values()
    diffs = values.diff().dropna()
    diffs = diffs[diffs > pd.Timedelta(0)]
    if diffs.empty:
        return None
    return pd.Timedelta(diffs.mode().iloc[0])


def season_hours(kind: str) -> int:
    """Season of the seasonal-naive baseline, hours: a day for solar and wind (the weather has
    no week), a week for transport (demand follows the week)."""
    return 24 if kind in RENEWABLE_KINDS else 168


def season_table() -> tuple[list[str], list[int]]:
    """(kinds, season hours) of every known kind, for SQL (``unnest`` of the two arrays);
    a kind not listed there takes ``season_hours`` of an unknown kind."""
    return list(KINDS), [season_hours(k) for k in KINDS]
