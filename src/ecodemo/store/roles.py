"""Database roles of a deployment: a writer for ingestion/training, a read-only role for Grafana.

Run by the administrator (the role that owns the schema and runs the migrations), after
``ecodemo db upgrade``. Idempotent: a role that exists gets its attributes, password and grants
set again, so rotating a password is "change ``.env``, rerun the init service".

- writer: ``SELECT, INSERT, UPDATE, DELETE`` on every table of the schema and ``USAGE`` on its
  sequences (``bigserial`` ids), now and for the tables later migrations create. It owns nothing,
  so it cannot ``DROP``/``ALTER`` a table, and it has no ``CREATEROLE``/``CREATEDB``.
- reader (Grafana): ``SELECT`` only, now and for future tables; its sessions also default to
  read-only transactions, a second guard behind the missing privileges.

Identifiers and literals go through :mod:`psycopg.sql`; user input is never formatted into SQL.
Passwords are hashed client-side (SCRAM-SHA-256, libpq's ``PQencryptPasswordConn``) so the clear
text never reaches the server (nor its statement log), and they are never printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import sql
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ecodemo.errors import ConfigError, DatabaseError

# Lower-case names only: they also appear unquoted in connection URLs and in .env files.
_ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIN_PASSWORD_CHARS = 12

Outcome = Literal["created", "updated"]


class RoleSettings(BaseSettings):
    """Role names and passwords, from ``ECODEMO_*`` environment variables (secrets: never shown)."""

    model_config = SettingsConfigDict(env_prefix="ECODEMO_", frozen=True, extra="ignore")

    writer_user: str | None = Field(default=None, description="Writer role (ingest, training).")
    writer_password: SecretStr | None = Field(default=None, description="Writer role password.")
    grafana_db_user: str | None = Field(default=None, description="Read-only role for Grafana.")
    grafana_db_password: SecretStr | None = Field(
        default=None, description="Read-only role password."
    )
    airflow_db_user: str | None = Field(
        default=None, description="Owner of Airflow's metadata database (optional)."
    )
    airflow_db_password: SecretStr | None = Field(default=None, description="Its password.")
    airflow_db_name: str = Field(default="airflow", description="Airflow's metadata database.")


@dataclass(frozen=True)
class LoginRole:
    """A role that logs in with a password. ``repr`` never shows the password (SecretStr)."""

    name: str
    password: SecretStr

    def __post_init__(self) -> None:
        if not _ROLE_RE.fullmatch(self.name):
            raise ConfigError(
                f"role name {self.name!r} must be lower-case letters, digits or '_' "
                "(at most 63, not starting with a digit)"
            )
        if len(self.password.get_secret_value()) < _MIN_PASSWORD_CHARS:
            raise ConfigError(
                f"password of role {self.name!r} is shorter than {_MIN_PASSWORD_CHARS} characters"
            )


@dataclass(frozen=True)
class RolesReport:
    """What :func:`apply_roles` did, one outcome per role (no secrets)."""

    writer: str
    writer_outcome: Outcome
    reader: str
    reader_outcome: Outcome
    owner: str
    schema: str

    def lines(self) -> list[str]:
        return [
            f"writer role {self.writer}: {self.writer_outcome} "
            f"(read/write on {self.schema} tables)",
            f"read-only role {self.reader}: {self.reader_outcome} "
            f"(SELECT on {self.schema} tables)",
            f"default privileges: future tables created by {self.owner} in {self.schema} "
            "get the same grants",
        ]


def _role(name: str | None, password: SecretStr | None, what: str, env: str) -> LoginRole:
    if not name or password is None or not password.get_secret_value():
        raise ConfigError(f"{what}: set ECODEMO_{env}_USER and ECODEMO_{env}_PASSWORD")
    return LoginRole(name, password)


def roles_from_settings(cfg: RoleSettings) -> tuple[LoginRole, LoginRole]:
    """The (writer, reader) roles the settings describe; ConfigError when one is incomplete."""
    writer = _role(cfg.writer_user, cfg.writer_password, "writer role", "WRITER")
    reader = _role(cfg.grafana_db_user, cfg.grafana_db_password, "Grafana role", "GRAFANA_DB")
    if writer.name == reader.name:
        raise ConfigError("the writer and the Grafana read-only role must have different names")
    return writer, reader


def _scram(conn: psycopg.Connection, role: LoginRole) -> str:
    """The SCRAM-SHA-256 verifier of the role's password, computed by libpq on this side."""
    hashed = conn.pgconn.encrypt_password(
        role.password.get_secret_value().encode(), role.name.encode(), b"scram-sha-256"
    )
    return hashed.decode("ascii")


def role_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def ensure_login_role(conn: psycopg.Connection, role: LoginRole) -> Outcome:
    """Create the role, or reset its attributes and password. Never a superuser or role creator."""
    outcome: Outcome = "updated" if role_exists(conn, role.name) else "created"
    verb = sql.SQL("ALTER ROLE" if outcome == "updated" else "CREATE ROLE")
    conn.execute(
        sql.SQL(
            "{} {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
            "INHERIT PASSWORD {}"
        ).format(verb, sql.Identifier(role.name), sql.Literal(_scram(conn, role)))
    )
    return outcome


# Each grant is a statement with {db}, {schema}, {role} and {owner} quoted as identifiers.
_CONNECT = ("GRANT CONNECT ON DATABASE {db} TO {role}",
            "GRANT USAGE ON SCHEMA {schema} TO {role}")
WRITER_GRANTS = (
    *_CONNECT,
    # PostgreSQL >= 15 already withholds CREATE on public from PUBLIC; older servers grant it,
    # which would let the writer create (and drop) tables of its own. Idempotent either way.
    "REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
    "GRANT USAGE, SELECT ON SEQUENCES TO {role}",
)
READER_GRANTS = (
    *_CONNECT,
    # a role that was a writer before (renamed in .env) must not keep write grants
    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {schema} FROM {role}",
    "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role}",
    "ALTER ROLE {role} SET default_transaction_read_only = on",
)


def _grant(conn: psycopg.Connection, statements: tuple[str, ...], *, role: str, owner: str,
           schema: str) -> None:
    names = {"db": conn.info.dbname, "schema": schema, "role": role, "owner": owner}
    ids = {key: sql.Identifier(name) for key, name in names.items()}
    for statement in statements:
        conn.execute(sql.SQL(statement).format(**ids))


def grant_writer(
    conn: psycopg.Connection, role: str, *, owner: str, schema: str = "public"
) -> None:
    """Read/write on every table and sequence of ``schema``, now and for ``owner``'s new tables."""
    _grant(conn, WRITER_GRANTS, role=role, owner=owner, schema=schema)


def grant_reader(
    conn: psycopg.Connection, role: str, *, owner: str, schema: str = "public"
) -> None:
    """SELECT on every table/view of ``schema``, now and for ``owner``'s new tables only."""
    _grant(conn, READER_GRANTS, role=role, owner=owner, schema=schema)


def apply_roles(
    conn: psycopg.Connection, writer: LoginRole, reader: LoginRole, *, schema: str = "public"
) -> RolesReport:
    """Create or update both roles and their grants, in one transaction. Returns what it did."""
    owner_row = conn.execute("SELECT current_user").fetchone()
    owner = str(owner_row[0]) if owner_row else ""
    if owner in (writer.name, reader.name):
        raise ConfigError(
            f"run `ecodemo db roles` as the administrator, not as the role {owner!r} it manages"
        )
    try:
        with conn.transaction():
            w = ensure_login_role(conn, writer)
            r = ensure_login_role(conn, reader)
            grant_writer(conn, writer.name, owner=owner, schema=schema)
            grant_reader(conn, reader.name, owner=owner, schema=schema)
    except psycopg.errors.InsufficientPrivilege as exc:
        first = str(exc).strip().splitlines()[0]
        raise DatabaseError(
            f"{owner} may not manage roles ({first}); use the administrator's URL"
        ) from exc
    return RolesReport(writer.name, w, reader.name, r, owner, schema)


def airflow_role_from_settings(cfg: RoleSettings) -> LoginRole | None:
    """The owner of Airflow's metadata database, or None when the settings do not ask for one."""
    if not cfg.airflow_db_user and cfg.airflow_db_password is None:
        return None
    return _role(cfg.airflow_db_user, cfg.airflow_db_password, "Airflow role", "AIRFLOW_DB")


def ensure_owned_database(
    conn: psycopg.Connection, dbname: str, owner: LoginRole
) -> tuple[Outcome, Literal["created", "exists"]]:
    """Create/update ``owner`` and a database it owns (Airflow's metadata, same server).

    ``conn`` must be in autocommit mode: CREATE DATABASE cannot run inside a transaction.
    """
    if not _ROLE_RE.fullmatch(dbname):
        raise ConfigError(f"database name {dbname!r} must be lower-case letters, digits or '_'")
    if not conn.autocommit:
        raise ValueError("ensure_owned_database needs an autocommit connection")
    try:
        role_outcome = ensure_login_role(conn, owner)
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)
        ).fetchone()
        if exists:
            conn.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                    sql.Identifier(dbname), sql.Identifier(owner.name)
                )
            )
        else:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(dbname), sql.Identifier(owner.name)
                )
            )
    except psycopg.errors.InsufficientPrivilege as exc:
        first = str(exc).strip().splitlines()[0]
        raise DatabaseError(f"cannot create database {dbname} ({first})") from exc
    return role_outcome, "exists" if exists else "created"
