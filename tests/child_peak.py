"""Run Python code in a child process and read its own peak resident memory.

The peak is the child's ``VmHWM`` from ``/proc/self/status``, read by the child itself at exit.
``wait4``'s ``ru_maxrss`` is not usable: Linux carries the parent's high-water mark into a
forked child across ``exec``, so a large pytest process would be charged to the child."""

from __future__ import annotations

import subprocess
import sys

from tests.integration.cli_helpers import cli_env

_REPORT_PEAK = """
import atexit as _atexit, sys as _sys
def _report_peak():
    for _line in open("/proc/self/status"):
        if _line.startswith("VmHWM:"):
            print("CHILD_PEAK_KIB", _line.split()[1], file=_sys.stderr)
_atexit.register(_report_peak)
"""


def run_measuring_peak(code: str, *args: str) -> tuple[str, int]:
    """Run ``code`` with ``args`` in a fresh interpreter; return (stdout, peak RSS in bytes)."""
    done = subprocess.run([sys.executable, "-c", _REPORT_PEAK + code, *args], env=cli_env(),
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    peaks = [int(line.split()[1]) for line in done.stderr.splitlines()
             if line.startswith("CHILD_PEAK_KIB ")]
    assert peaks, f"the child did not report its peak memory: {done.stderr[-2000:]}"
    return done.stdout, peaks[-1] * 1024
