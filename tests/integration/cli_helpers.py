"""Run the real ``ecodemo`` command line in a subprocess, with a controlled environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import REPO

#: The console script's entry point, run by this interpreter with this checkout's code first.
CLI = [sys.executable, "-c", "from ecodemo.cli import main; main()"]


def cli_env(**extra: str | None) -> dict[str, str]:
    """The current environment without ECODEMO_* variables, plus ``extra`` (None = unset)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECODEMO_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH")) if p)
    env["COLUMNS"] = "200"  # keep rich from wrapping the one-line messages
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_cli(args: Sequence[str | Path], env: dict[str, str], *, prefix: Sequence[str] = (),
            timeout: float = 300, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    """Run ``ecodemo ARGS`` (optionally under ``prefix``, e.g. runuser) and capture its output."""
    cli = [python, *CLI[1:]]
    return subprocess.run([*prefix, *cli, *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
