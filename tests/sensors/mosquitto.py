"""Start a real Mosquitto broker (Debian package ``mosquitto``) on a free local port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CANDIDATES = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


def mosquitto_binary() -> str | None:
    for c in CANDIDATES:
        if Path(c).is_file():
            return c
    return shutil.which("mosquitto")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """A Mosquitto process on a fixed local port that can be stopped and started again.

    ``config`` is written after the listener line; the default keeps nothing on disk and
    allows generous in-flight and queue limits (the subscriber's own flow control, its
    Receive Maximum, is what bounds its buffer).
    """

    DEFAULT = ("allow_anonymous true\npersistence false\nmax_inflight_messages 0\n"
               "max_queued_messages 100000\n")

    def __init__(self, tmp: Path, config: str = DEFAULT) -> None:
        binary = mosquitto_binary()
        if binary is None:
            pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does it)")
        self.binary = binary
        self.tmp = tmp
        self.port = free_port()
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\n{config}")
        self.log_path = tmp / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "a")  # noqa: SIM115 (closed by the child's exit)
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.log_path.read_text()) from None
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: "
                           f"{self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        """A clean stop (SIGTERM): a persistent broker saves its sessions and queues."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


@contextmanager
def broker(tmp: Path) -> Iterator[int]:
    mosq = Mosquitto(tmp)
    mosq.start()
    try:
        yield mosq.port
    finally:
        mosq.stop()
