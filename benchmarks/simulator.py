"""Time the sensor simulator: 1,000 sensors x 1 year hourly (8.8 M rows), side by side with
the target ("a few seconds", taken as 5 s). Best of 3 runs on this machine."""

from __future__ import annotations

import time

from ecodemo.sensors.simulator import simulate

REFERENCE_S = 5.0


def main() -> None:
    simulate(4, "2024-01-01", "2024-01-02")  # imports, holiday tables
    print(f"{'case':44} {'rows':>10} {'best s':>7} {'ref s':>6} {'Mrows/s':>8}")
    for n, start, end, freq in ((100, "2024-01-01", "2025-01-01", "1h"),
                                (1000, "2024-01-01", "2025-01-01", "1h"),
                                (100, "2024-01-01", "2024-04-01", "15min")):
        best = float("inf")
        rows = 0
        for _ in range(3):
            t0 = time.perf_counter()
            table = simulate(n, start, end, freq, seed=1)
            best = min(best, time.perf_counter() - t0)
            rows = table.num_rows
        label = f"{n} sensors {start}..{end} {freq}"
        print(f"{label:44} {rows:>10,} {best:>7.2f} {REFERENCE_S:>6.1f} {rows / best / 1e6:>8.2f}")


if __name__ == "__main__":
    main()
