"""CodeCarbon tracking overhead against a typical LightGBM train and predict run.

Prints, side by side with the targets: the first-start cost (paid once per process), the
per-run start/stop cost after it (median and worst of N runs), and that cost as a share of the
wall time of a typical training run and a typical predict run on the bundled Paris bike data
(6 counters, one year hourly, calendar + lag features, 200 boosting rounds, 2 threads).

    python benchmarks/tracking_overhead.py [--runs 30] [--record]

``--record`` also writes each run's compute_runs row (the database from ECODEMO_* settings,
embedded PostgreSQL by default), so the figure includes the INSERT.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from ecodemo.config import Settings, load_settings
from ecodemo.metering import track_run
from ecodemo.paths import snapshot_dir
from ecodemo.store import migrate
from ecodemo.store.connection import open_database

TARGET_PER_RUN_MS = 50.0
TARGET_SHARE_OF_TRAINING = 0.02


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    out = []
    for _sensor, g in frame.groupby("site_id"):
        g = g.set_index("timestamp").sort_index()
        s = g["value"].asfreq("1h")
        f = pd.DataFrame({"y": s, "lag24": s.shift(24), "lag48": s.shift(48),
                          "lag168": s.shift(168), "hour": s.index.hour,
                          "dow": s.index.day_of_week, "month": s.index.month})
        out.append(f.dropna())
    return pd.concat(out)


def typical_runs(threads: int) -> tuple[float, float]:
    """Wall time (s) of a typical LightGBM train and a 48 h x 6 sensors predict."""
    frame = pd.read_csv(snapshot_dir() / "transport_bike.csv.gz", parse_dates=["timestamp"])
    data = _features(frame)
    x, y = data.drop(columns="y").to_numpy(), data["y"].to_numpy()
    params = {"objective": "l2", "num_threads": threads, "verbose": -1, "seed": 1,
              "num_leaves": 31, "learning_rate": 0.05}
    t0 = time.perf_counter()
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=200)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    booster.predict(x[-48 * 6:], num_threads=threads)
    predict_s = time.perf_counter() - t0
    return train_s, predict_s


def tracking_costs(settings: Settings, runs: int, record: bool) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    with track_run(settings, "benchmark", record=record):
        pass
    first = time.perf_counter() - t0
    costs = []
    for _ in range(runs):
        t0 = time.perf_counter()
        with track_run(settings, "benchmark", record=record):
            pass
        costs.append(time.perf_counter() - t0)
    return first, costs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30, help="measured runs after the first")
    ap.add_argument("--record", action="store_true", help="also write compute_runs rows")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    if args.record:
        settings = load_settings()
        migrate.upgrade(open_database(settings).url)
    else:
        settings = Settings(state_dir=Path(tempfile.mkdtemp(prefix="ecodemo-bench-")))
    first, costs = tracking_costs(settings, args.runs, args.record)
    train_s, predict_s = typical_runs(settings.num_threads)
    med, worst = statistics.median(costs), max(costs)
    share_train, share_pred = med / train_s, med / predict_s

    rows = [
        ("first start (once per process)", f"{first * 1000:8.1f} ms", "paid once"),
        (f"per run, median of {args.runs}", f"{med * 1000:8.2f} ms", f"< {TARGET_PER_RUN_MS} ms"),
        (f"per run, worst of {args.runs}", f"{worst * 1000:8.2f} ms", f"< {TARGET_PER_RUN_MS} ms"),
        ("typical LightGBM training run", f"{train_s * 1000:8.0f} ms", ""),
        ("per-run cost / training run", f"{share_train * 100:8.3f} %",
         f"< {TARGET_SHARE_OF_TRAINING * 100:.0f} %"),
        ("typical predict run (48 h x 6)", f"{predict_s * 1000:8.1f} ms", ""),
        ("per-run cost / predict run", f"{share_pred * 100:8.1f} %", "(reference)"),
    ]
    print(f"CodeCarbon tracking overhead ({'with' if args.record else 'without'} the "
          f"compute_runs INSERT; {settings.num_threads} LightGBM threads)")
    print(f"{'figure':34} {'measured':>12}   target")
    for name, value, target in rows:
        print(f"{name:34} {value:>12}   {target}")
    ok = med * 1000 < TARGET_PER_RUN_MS and share_train < TARGET_SHARE_OF_TRAINING
    print(f"targets {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
