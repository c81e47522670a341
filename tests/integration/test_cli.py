"""The ``ecodemo`` command line as a user runs it: help, errors, embedded database, secrets.

Every command here runs the real CLI in a subprocess against a real PostgreSQL.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
import typer.main
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from typer.testing import CliRunner

from ecodemo.cli import app
from tests.integration.cli_helpers import cli_env, run_cli

SITES = """site_id,name,kind,latitude,longitude,unit
bike-a,Bike A,bike,48.85,2.35,bicycles/h
bike-b,Bike B,bike,48.86,2.36,bicycles/h
"""
# The project's development data set (not bundled: large); ECODEMO_DEV_DATA_DIR overrides.
SHARED = Path(os.environ.get("ECODEMO_DEV_DATA_DIR")
                    or Path(__file__).resolve().parents[2].parent / "shared" / "data")
PARIS_BIKE = SHARED / "transport_paris_bike_counters_hourly.csv.gz"
PARIS_BIKE_ROWS = 460_879


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every (sub)command of a click group (Typer vendors its own click: duck-typed)."""
    found: list[tuple[tuple[str, ...], Any]] = []
    for name, cmd in sorted(group.commands.items()):
        found.append(((*path, name), cmd))
        if hasattr(cmd, "commands"):
            found.extend(_commands(cmd, (*path, name)))
    return found


def _write_readings(path: Path, hours: int = 48) -> Path:
    lines = ["timestamp,site_id,value,unit"]
    for sid in ("bike-a", "bike-b"):
        lines += [f"2024-05-{1 + h // 24:02d}T{h % 24:02d}:00:00+00:00,{sid},{h},bicycles/h"
                  for h in range(hours)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_command_help_mentions_its_options() -> None:
    commands = _commands(typer.main.get_command(app))
    assert {p for p, _ in commands} >= {("db",), ("db", "status"), ("db", "upgrade"),
                                        ("ingest",), ("ingest", "csv"), ("demo",)}
    runner = CliRunner()
    for path, cmd in commands:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert cmd.help, f"{' '.join(path)} has no help text"
        for param in cmd.params:
            if param.param_type_name == "option":
                assert param.help, f"{' '.join(path)} {param.opts[0]} has no help text"
                assert any(opt in result.output for opt in param.opts), (path, param.opts)
            elif param.param_type_name == "argument":
                assert (param.name or "").lower() in result.output.lower(), (path, param.name)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # a sites file with an unknown kind: file, line and field named
        ("site_id,name,kind,latitude,longitude,unit\nx,X,tram,48.8,2.3,count/h\n",
         ["sites.csv, line 2, field 'kind'", "unknown kind 'tram'"]),
        ("site_id,name,kind,latitude,longitude,unit\nx,X,bike,north,2.3,count/h\n",
         ["sites.csv, line 2, field 'latitude'", "'north' is not a number"]),
    ],
)
def test_bad_sites_file_is_one_line_error(db_url, tmp_path, content, expected) -> None:
    sites = tmp_path / "sites.csv"
    sites.write_text(content)
    readings = _write_readings(tmp_path / "r.csv")
    env = cli_env(ECODEMO_DATABASE_URL=db_url, ECODEMO_STATE_DIR=str(tmp_path / "state"))
    res = run_cli(["ingest", "csv", readings, "--sites", sites], env)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    for part in expected:
        assert part in lines[0]
    assert "Traceback" not in res.stderr + res.stdout

    debug = run_cli(["--debug", "ingest", "csv", readings, "--sites", sites], env)
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr
    assert "InputError" in debug.stderr


def test_usage_error_is_short_and_non_zero(tmp_path) -> None:
    env = cli_env(ECODEMO_STATE_DIR=str(tmp_path / "state"))
    for args in (["ingest", "csv"], ["db", "status", "--bogus"]):
        res = run_cli(args, env)
        assert res.returncode == 2, res.stderr  # click's usage-error code
        assert "Traceback" not in res.stderr and "unexpected" not in res.stderr
        assert ("path" in res.stderr.lower()) or ("--bogus" in res.stderr)


def test_log_level_setting_filters_logs_and_bad_value_is_one_line(db_url, tmp_path) -> None:
    base = {"ECODEMO_DATABASE_URL": db_url, "ECODEMO_STATE_DIR": str(tmp_path / "state")}
    info = run_cli(["evaluate"], cli_env(**base))  # logs the grid-intensity step at INFO
    assert info.returncode == 0, info.stderr
    assert " INFO ecodemo." in info.stderr
    quiet = run_cli(["evaluate"], cli_env(**base, ECODEMO_LOG_LEVEL="warning"))
    assert quiet.returncode == 0, quiet.stderr
    assert " INFO " not in quiet.stderr
    bad = run_cli(["db", "status"], cli_env(**base, ECODEMO_LOG_LEVEL="loud"))
    assert bad.returncode == 2  # ConfigError
    assert bad.stderr.strip().splitlines() == [
        "error: ECODEMO_LOG_LEVEL=LOUD: expected DEBUG, INFO, WARNING or ERROR"]


def test_bad_readings_file_names_file_and_line(db_url, tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time,site_id,value\n2024-01-01T00:00Z,bike-a,1\n")
    env = cli_env(ECODEMO_DATABASE_URL=db_url, ECODEMO_STATE_DIR=str(tmp_path / "state"))
    res = run_cli(["ingest", "csv", bad], env)
    assert res.returncode == 3  # InputError
    assert res.stderr.strip().splitlines() == [
        f"error: {bad}, line 1: missing column(s) timestamp, unit; "
        "expected timestamp,site_id,value,unit"]
    missing = run_cli(["ingest", "csv", tmp_path / "nope.csv"], env)
    assert missing.returncode != 0
    assert missing.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: file not found"


def _server_running(pgdata: Path) -> bool:
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if proc.info.get("name") == "postgres" and any(str(pgdata) in c for c in cmd):
            return True
    return False


def test_two_commands_in_a_row_reuse_the_embedded_database(tmp_path) -> None:
    state = tmp_path / "fresh" / "state"  # does not exist yet: the first command creates it
    env = cli_env(ECODEMO_STATE_DIR=str(state), ECODEMO_DATABASE_URL=None)
    sites = tmp_path / "sites.csv"
    sites.write_text(SITES)
    readings = _write_readings(tmp_path / "r.csv")
    pgdata = state.resolve() / "pgdata"

    first = run_cli(["ingest", "csv", readings, "--sites", sites], env)
    assert first.returncode == 0, first.stderr
    assert "96 inserted" in first.stdout
    assert "embedded PostgreSQL" in first.stdout
    assert not (pgdata / "postmaster.pid").exists(), "server left running after the command"
    assert not _server_running(pgdata)

    second = run_cli(["db", "status"], env)
    assert second.returncode == 0, second.stderr
    assert "readings: 96 rows" in second.stdout
    assert "sites: 2 rows" in second.stdout
    assert not (pgdata / "postmaster.pid").exists()
    assert not _server_running(pgdata)

    again = run_cli(["ingest", "csv", readings], env)  # the sites are still registered
    assert again.returncode == 0, again.stderr
    assert "0 inserted, 0 updated, 96 unchanged" in again.stdout


def test_database_password_never_printed(db_url, tmp_path) -> None:
    secret = "pw-Zq7-never-print-me"
    params = conninfo_to_dict(db_url)
    params["password"] = secret  # the test server trusts local connections: still connects
    url = make_conninfo(**params)
    sites = tmp_path / "sites.csv"
    sites.write_text(SITES)
    readings = _write_readings(tmp_path / "r.csv")
    env = cli_env(ECODEMO_DATABASE_URL=url, ECODEMO_STATE_DIR=str(tmp_path / "state"))
    outputs = []
    for args in (["--debug", "db", "upgrade"],
                 ["--debug", "ingest", "csv", readings, "--sites", sites],
                 ["--debug", "db", "status"],
                 ["--debug", "ingest", "csv", tmp_path / "missing.csv"]):
        res = run_cli(args, env)
        outputs.append(res.stdout + res.stderr)
    assert "readings: 96 rows" in outputs[2]
    assert "database: postgresql://" in outputs[2]  # the redacted label
    # an unreachable server with a password in its URL: the error names it without the password
    bad = make_conninfo(host="127.0.0.1", port=1, user="someone", password=secret, dbname="x")
    for debug in ([], ["--debug"]):
        res = run_cli([*debug, "db", "status"], cli_env(ECODEMO_DATABASE_URL=bad))
        assert res.returncode == (1 if debug else 4)  # --debug re-raises: traceback, exit 1
        assert "cannot connect to postgresql://someone@127.0.0.1:1/x" in res.stderr
        outputs.append(res.stdout + res.stderr)
    for out in outputs:
        assert secret not in out


@pytest.mark.slow
@pytest.mark.skipif(not PARIS_BIKE.is_file(),
                    reason=f"{PARIS_BIKE} is absent (shared data only on the development VMs)")
def test_paris_bike_file_exact_rows_and_idempotent(db_url) -> None:
    env = cli_env(ECODEMO_DATABASE_URL=db_url)
    first = run_cli(["ingest", "csv", PARIS_BIKE, "--sites", SHARED / "sites.csv"], env)
    assert first.returncode == 0, first.stderr
    assert f"{PARIS_BIKE_ROWS:,} rows read: {PARIS_BIKE_ROWS:,} inserted" in first.stdout
    with gzip.open(PARIS_BIKE, "rt") as fh:
        assert sum(1 for _ in fh) - 1 == PARIS_BIKE_ROWS  # the file itself, header excluded
    with psycopg.connect(db_url) as conn:
        before = conn.execute(
            "SELECT count(*), sum(value), max(ingested_at) FROM readings").fetchone()
    assert before is not None and before[0] == PARIS_BIKE_ROWS

    second = run_cli(["ingest", "csv", PARIS_BIKE, "--sites", SHARED / "sites.csv"], env)
    assert second.returncode == 0, second.stderr
    assert (f"0 inserted, 0 updated, {PARIS_BIKE_ROWS:,} unchanged, 0 quarantined"
            in second.stdout)
    with psycopg.connect(db_url) as conn:
        after = conn.execute(
            "SELECT count(*), sum(value), max(ingested_at) FROM readings").fetchone()
        quarantined = conn.execute("SELECT count(*) FROM quarantine").fetchone()
    assert after == before
    assert quarantined == (0,)

