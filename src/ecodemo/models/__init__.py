"""Forecasting: features, no-AI baselines, LightGBM, backtests, the registry and the ladder.

Stage functions for the CLI and Airflow are in :mod:`ecodemo.models.stages`.
"""

import os

# LightGBM uses OpenMP. With the default active wait policy, idle threads spin, and when other
# processes share the cores (parallel Airflow tasks on one worker, a 2-core VM) a 2-thread
# training can run 5-10x slower than 1 thread. Passive waiting avoids that; set before
# LightGBM loads libgomp, and only if the user has not chosen a policy.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
