"""Shared helpers for the static deployment checks (no Docker engine on the test machines)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
CLUSTER = REPO / "docker-compose.cluster.yml"
ENV_EXAMPLE = REPO / ".env.example"


def env_example() -> dict[str, str]:
    """KEY=value lines of .env.example (comments and commented-out keys ignored)."""
    out: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


@pytest.fixture()
def filled_env(tmp_path: Path) -> Path:
    """A .env made by the repository's own deploy/make-env.sh (random secrets)."""
    target = tmp_path / "test.env"
    subprocess.run(["bash", str(REPO / "deploy" / "make-env.sh"), str(target)], check=True,
                   capture_output=True, text=True, timeout=60)
    return target


def compose_cli() -> list[str] | None:
    """A compose CLI: `docker compose` (v2 plugin) if it works, else Debian's docker-compose."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True,
                               check=False, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def clean_env() -> dict[str, str]:
    """Only PATH/HOME: variables of the test process must not satisfy compose's ${VAR:?}."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
