"""`ecodemo db roles` on the real PostgreSQL of the fixtures.

The embedded server trusts local connections (its pg_hba says ``trust``), so logging in proves
the privileges but not the password: the stored SCRAM verifier is checked against the password
by recomputing it (RFC 5802/7677), which a wrong or clear-text password would fail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from ecodemo.errors import ConfigError
from ecodemo.store import roles
from ecodemo.store.ingest import ingest_table

REPO = Path(__file__).resolve().parents[2]
_MAIN = "from ecodemo.cli import main; main()"


def _as(url: str, user: str, password: str) -> str:
    params = conninfo_to_dict(url)
    params.update(user=user, password=password)
    return make_conninfo(**params)


def _scram_matches(verifier: str, password: str) -> bool:
    """True when a ``SCRAM-SHA-256$iter:salt$StoredKey:ServerKey`` verifier is for ``password``."""
    algo, rest = verifier.split("$", 1)
    assert algo == "SCRAM-SHA-256"
    iter_salt, keys = rest.split("$")
    iterations, salt = iter_salt.split(":")
    stored_key, server_key = keys.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                 int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()
    return (base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key
            and base64.b64encode(server).decode() == server_key)


@pytest.fixture()
def names() -> Iterator[tuple[str, str]]:
    """Unique role names (roles are cluster-wide, databases are per test)."""
    tag = uuid.uuid4().hex[:8]
    yield f"w_{tag}", f"r_{tag}"


@pytest.fixture()
def applied(conn: psycopg.Connection, names: tuple[str, str], snapshot_sites: int
            ) -> Iterator[tuple[roles.LoginRole, roles.LoginRole]]:
    writer = roles.LoginRole(names[0], SecretStr("writer-" + uuid.uuid4().hex))
    reader = roles.LoginRole(names[1], SecretStr("reader-" + uuid.uuid4().hex))
    roles.apply_roles(conn, writer, reader)
    yield writer, reader
    for name in names:
        conn.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(name)))
        conn.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(name)))


def _a_sensor(conn: psycopg.Connection) -> tuple[str, str]:
    row = conn.execute("SELECT sensor_id, unit FROM sensors ORDER BY sensor_id LIMIT 1").fetchone()
    assert row is not None
    return row[0], row[1]


def test_reader_selects_but_cannot_write(db_url: str, conn: psycopg.Connection,
                                         applied: tuple[roles.LoginRole, roles.LoginRole]) -> None:
    _, reader = applied
    sensor, _unit = _a_sensor(conn)
    url = _as(db_url, reader.name, reader.password.get_secret_value())
    with psycopg.connect(url, autocommit=True) as rc:
        assert rc.execute("SELECT count(*) FROM sensors").fetchone()[0] > 0
        assert rc.execute("SELECT count(*) FROM readings_hourly").fetchone() is not None
        # Its sessions are read-only by default...
        with pytest.raises(errors.ReadOnlySqlTransaction):
            rc.execute("INSERT INTO readings (sensor_id, ts, value) VALUES (%s, now(), 1)",
                       (sensor,))
        # ...and with that guard switched off, the missing privilege still refuses the write.
        rc.execute("SET default_transaction_read_only = off")
        for stmt in ("INSERT INTO readings (sensor_id, ts, value) VALUES (%s, now(), 1)",
                     "DELETE FROM readings WHERE sensor_id = %s",
                     "UPDATE sensors SET enabled = false WHERE sensor_id = %s"):
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                rc.execute(stmt, (sensor,))
        with pytest.raises(errors.InsufficientPrivilege):
            rc.execute("CREATE TABLE sneaky (x int)")


def test_writer_ingests_but_cannot_drop_or_create_roles(
        db_url: str, conn: psycopg.Connection,
        applied: tuple[roles.LoginRole, roles.LoginRole]) -> None:
    writer, _ = applied
    sensor, unit = _a_sensor(conn)
    url = _as(db_url, writer.name, writer.password.get_secret_value())
    with psycopg.connect(url, autocommit=True) as wc:
        table = pa.table({"timestamp": ["2024-03-01T00:00:00Z", "2024-03-01T01:00:00Z"],
                          "site_id": [sensor, sensor], "value": ["1.5", "2.5"],
                          "unit": [unit, unit]})
        counts = ingest_table(wc, table, "test-writer")
        assert counts.inserted == 2, counts
        # a correction: on TimescaleDB the batch first locks the (now existing) chunk it writes
        fixed = table.set_column(2, "value", pa.array(["1.0", "2.0"]))
        assert ingest_table(wc, fixed, "test-writer").updated == 2
        # bigserial ids need USAGE on the sequence
        wc.execute("INSERT INTO quarantine (source, raw, reason) VALUES ('t', 'x', 'test')")
        assert conn.execute(
            "SELECT count(*) FROM readings WHERE sensor_id = %s AND ts >= '2024-03-01'",
            (sensor,)).fetchone()[0] == 2
        for stmt in ("DROP TABLE readings", "TRUNCATE readings", "ALTER TABLE readings ADD x int",
                     "CREATE TABLE sneaky (x int)", "CREATE ROLE sneaky LOGIN",
                     "CREATE DATABASE sneaky"):
            with pytest.raises(errors.InsufficientPrivilege):
                wc.execute(stmt)


def test_future_tables_get_default_privileges(
        db_url: str, conn: psycopg.Connection,
        applied: tuple[roles.LoginRole, roles.LoginRole]) -> None:
    writer, reader = applied
    conn.execute("CREATE TABLE later_migration (id bigserial PRIMARY KEY, v int)")
    with psycopg.connect(_as(db_url, writer.name, writer.password.get_secret_value()),
                         autocommit=True) as wc:
        wc.execute("INSERT INTO later_migration (v) VALUES (1)")
    with psycopg.connect(_as(db_url, reader.name, reader.password.get_secret_value()),
                         autocommit=True) as rc:
        assert rc.execute("SELECT v FROM later_migration").fetchall() == [(1,)]


def test_idempotent_and_rotates_passwords(conn: psycopg.Connection,
                                          applied: tuple[roles.LoginRole, roles.LoginRole]
                                          ) -> None:
    writer, reader = applied

    def verifier(name: str) -> str:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                           (name,)).fetchone()
        assert row is not None
        return str(row[0])

    assert _scram_matches(verifier(writer.name), writer.password.get_secret_value())
    assert not _scram_matches(verifier(writer.name), "not-the-password")
    again = roles.apply_roles(conn, writer, reader)
    assert (again.writer_outcome, again.reader_outcome) == ("updated", "updated")
    rotated = roles.LoginRole(writer.name, SecretStr("rotated-" + uuid.uuid4().hex))
    roles.apply_roles(conn, rotated, reader)
    assert _scram_matches(verifier(writer.name), rotated.password.get_secret_value())
    assert not _scram_matches(verifier(writer.name), writer.password.get_secret_value())
    attrs = conn.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles "
        "WHERE rolname = ANY(%s) ORDER BY rolname", ([writer.name, reader.name],)).fetchall()
    assert attrs == [(False, False, False, True)] * 2


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="ECODEMO_WRITER_USER"):
        roles.roles_from_settings(roles.RoleSettings(grafana_db_user="g",
                                                     grafana_db_password=SecretStr("x" * 20)))
    with pytest.raises(ConfigError, match="lower-case"):
        roles.LoginRole("Robert'); DROP TABLE x;--", SecretStr("x" * 20))
    with pytest.raises(ConfigError, match="shorter"):
        roles.LoginRole("writer", SecretStr("short"))
    same = roles.RoleSettings(writer_user="a", writer_password=SecretStr("x" * 20),
                              grafana_db_user="a", grafana_db_password=SecretStr("y" * 20))
    with pytest.raises(ConfigError, match="different"):
        roles.roles_from_settings(same)


def test_cli_creates_roles_and_airflow_database_without_printing_passwords(
        db_url: str, pg_admin_url: str, conn: psycopg.Connection, names: tuple[str, str]) -> None:
    tag = uuid.uuid4().hex[:8]
    secrets = {"ECODEMO_WRITER_PASSWORD": "w-secret-" + uuid.uuid4().hex,
               "ECODEMO_GRAFANA_DB_PASSWORD": "g-secret-" + uuid.uuid4().hex,
               "ECODEMO_AIRFLOW_DB_PASSWORD": "a-secret-" + uuid.uuid4().hex}
    env = {**os.environ, **secrets, "ECODEMO_DATABASE_URL": db_url,
           "ECODEMO_WRITER_USER": names[0], "ECODEMO_GRAFANA_DB_USER": names[1],
           "ECODEMO_AIRFLOW_DB_USER": f"af_{tag}", "ECODEMO_AIRFLOW_DB_NAME": f"afdb_{tag}",
           "PYTHONPATH": str(REPO / "src")}
    try:
        for attempt in (1, 2):
            out = subprocess.run([sys.executable, "-c", _MAIN, "db", "roles"], env=env,
                                 capture_output=True, text=True, timeout=120, check=False)
            assert out.returncode == 0, out.stderr
            text = out.stdout + out.stderr
            for secret in secrets.values():
                assert secret not in text
            assert ("created" if attempt == 1 else "updated") in text
            assert f"afdb_{tag}: {'created' if attempt == 1 else 'exists'}" in text
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
            (f"afdb_{tag}",)).fetchone()
        assert owner == (f"af_{tag}",)
        # a missing variable is one clear line and a non-zero exit, not a traceback
        env.pop("ECODEMO_GRAFANA_DB_PASSWORD")
        bad = subprocess.run([sys.executable, "-c", _MAIN, "db", "roles"], env=env,
                             capture_output=True, text=True, timeout=120, check=False)
        assert bad.returncode == ConfigError.exit_code
        assert "ECODEMO_GRAFANA_DB_PASSWORD" in bad.stderr and "Traceback" not in bad.stderr
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(
                psycopg.sql.Identifier(f"afdb_{tag}")))
        for name in (*names, f"af_{tag}"):
            if roles.role_exists(conn, name):
                conn.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(
                    psycopg.sql.Identifier(name)))
                conn.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(name)))


def test_writer_upgrade_on_current_schema_is_a_no_op(
        db_url: str, applied: tuple[roles.LoginRole, roles.LoginRole]) -> None:
    """Tasks run as the writer and open the store through migrate.upgrade(): must not fail."""
    from ecodemo.store import migrate

    writer, _ = applied
    assert migrate.upgrade(_as(db_url, writer.name, writer.password.get_secret_value())) == []
