"""Secrets never leak: the database password and the Grafana token/passwords are absent from
CLI output, log output (``--debug``: every logger at DEBUG), error messages, ``repr`` and
``safe_dict`` of the settings, and the files a run leaves in the state directory."""

from __future__ import annotations

import logging
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from ecodemo.config import Settings
from tests.integration.cli_helpers import cli_env, run_cli

DB_PASSWORD = "db-pw-Xq93-leak-canary"
TOKEN = "glsa_token-Zr71-leak-canary"
GRAFANA_PASSWORD = "grafana-pw-Kk28-leak-canary"
READER_PASSWORD = "reader-pw-Mm55-leak-canary"
SECRETS = (DB_PASSWORD, TOKEN, GRAFANA_PASSWORD, READER_PASSWORD)

SITES = "site_id,name,kind,latitude,longitude,unit\nbike-a,Bike A,bike,48.85,2.35,bicycles/h\n"


def _url_with_password(db_url: str) -> str:
    params = conninfo_to_dict(db_url)
    params["password"] = DB_PASSWORD  # the test server trusts local connections: still connects
    return make_conninfo(**params)


def _assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret leaked in {where}"


def test_settings_repr_and_safe_dict_hide_secrets(db_url) -> None:
    s = Settings(database_url=SecretStr(_url_with_password(db_url)),
                 grafana_token=SecretStr(TOKEN), grafana_password=SecretStr(GRAFANA_PASSWORD),
                 grafana_db_password=SecretStr(READER_PASSWORD))
    for text, where in ((repr(s), "repr"), (str(s), "str"), (str(s.safe_dict()), "safe_dict"),
                        (s.model_dump_json(), "model_dump_json")):
        _assert_clean(text, where)
    safe = s.safe_dict()
    assert safe["grafana_token"] == safe["database_url"] == "***"


def test_cli_output_logs_and_state_files_hold_no_secret(db_url, tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = cli_env(ECODEMO_DATABASE_URL=_url_with_password(db_url),
                  ECODEMO_STATE_DIR=str(state),
                  ECODEMO_GRAFANA_URL="http://127.0.0.1:9",   # nothing listens: publish fails
                  ECODEMO_GRAFANA_TOKEN=TOKEN,
                  ECODEMO_GRAFANA_USER="admin",
                  ECODEMO_GRAFANA_PASSWORD=GRAFANA_PASSWORD,
                  ECODEMO_GRAFANA_DB_USER="ecodemo_reader",
                  ECODEMO_GRAFANA_DB_PASSWORD=READER_PASSWORD,
                  ECODEMO_LOG_LEVEL="DEBUG")
    sites = tmp_path / "sites.csv"
    sites.write_text(SITES)
    readings = tmp_path / "r.csv"
    readings.write_text("timestamp,site_id,value,unit\n" + "".join(
        f"2024-05-01T{h:02d}:00:00Z,bike-a,{h},bicycles/h\n" for h in range(24)))
    runs = {
        "db status": (["--debug", "db", "status"], 0),
        "ingest csv": (["--debug", "ingest", "csv", readings, "--sites", sites], 0),
        "failing ingest": (["ingest", "csv", tmp_path / "missing.csv"], 3),
        "failing ingest --debug": (["--debug", "ingest", "csv", tmp_path / "missing.csv"], 1),
        # Grafana unreachable: PublishError (exit 7), or a traceback under --debug (exit 1)
        "failing publish": (["dashboards", "publish", "--out", tmp_path / "dash"], 7),
        "failing publish --debug": (["--debug", "dashboards", "publish", "--out",
                                     tmp_path / "dash2"], 1),
    }
    results = {}
    for name, (args, code) in runs.items():
        res = results[name] = run_cli(args, env)
        assert res.returncode == code, (name, res.stderr[-2000:])
        _assert_clean(res.stdout + res.stderr, name)
    assert "24 rows read: 24 inserted" in results["ingest csv"].stdout
    assert "DEBUG" in results["ingest csv"].stderr  # the logs were on, and captured
    assert "error: " in results["failing publish"].stderr
    # Whatever the runs left on disk (CodeCarbon output, built dashboards, state) is clean too.
    for path in [p for p in tmp_path.rglob("*") if p.is_file()]:
        _assert_clean(path.read_text(errors="replace"), str(path))


def test_library_logging_holds_no_secret(db_url, tmp_path: Path, caplog) -> None:
    """The stage functions' own log records (captured in-process at DEBUG)."""
    from ecodemo.pipeline import store_summary, upgrade_db

    s = Settings(database_url=SecretStr(_url_with_password(db_url)), state_dir=tmp_path / "st",
                 grafana_token=SecretStr(TOKEN), grafana_url="http://127.0.0.1:9")
    with caplog.at_level(logging.DEBUG):
        upgrade_db(s)
        store_summary(s)
        try:
            from ecodemo.dashboards.stages import publish

            publish(s, out_dir=tmp_path / "out")
        except Exception as exc:  # noqa: BLE001 - the error text is checked too
            _assert_clean(f"{type(exc).__name__}: {exc}", "publish error")
    _assert_clean("\n".join(r.getMessage() for r in caplog.records), "log records")
