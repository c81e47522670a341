"""Static checks of docker-compose.yml, its cluster override, .env.example and provisioning.

The compose files are parsed by a real compose CLI when one is installed: Debian 12's
`docker-compose` package (v1.29, which understands `profiles` and
`condition: service_completed_successfully`) or the `docker compose` v2 plugin; .ci/run installs
the Debian package. Without either, that test is skipped and the structural checks below (plain
YAML) still run.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import (
    CLUSTER,
    COMPOSE,
    REPO,
    clean_env,
    compose_cli,
    env_example,
    load_yaml,
)

# ${VAR}, ${VAR:?msg}, ${VAR:-default}, $VAR; `$$` is compose's escape for a literal `$`.
_VAR_RE = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_SECRET_RE = re.compile(r"PASSWORD|SECRET|FERNET")
UI_SERVICES = {"grafana": 3000, "airflow-apiserver": 8080}


def _vars(text: str) -> dict[str, set[str]]:
    """Variable name -> the modifiers it is used with (':?msg', ':-default', '').

    Comment lines are skipped (they may show the syntax itself).
    """
    found: dict[str, set[str]] = {}
    code = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    for m in _VAR_RE.finditer(code):
        name = m.group(1) or m.group(3)
        found.setdefault(name, set()).add(m.group(2) or "")
    return found


def _run(cli: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli, *args], cwd=REPO, env=clean_env(), capture_output=True,
                          text=True, timeout=120, check=False)


# --- the compose CLI ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli() -> list[str]:
    found = compose_cli()
    if found is None:
        pytest.skip("no compose CLI (apt-get install docker-compose); structural checks still run")
    return found


def test_compose_config_parses_with_filled_env(cli: list[str], filled_env: Path) -> None:
    out = _run(cli, "--env-file", str(filled_env), "config")
    assert out.returncode == 0, out.stderr
    resolved = yaml.safe_load(out.stdout)
    assert {"timescaledb", "ecodemo-init", "airflow-init", "airflow-apiserver",
            "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
            "grafana"} <= set(resolved["services"])
    env = resolved["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    # every secret reached the services it is meant for
    secrets = {k: v for k, v in (line.split("=", 1) for line in
               filled_env.read_text().splitlines() if "=" in line and not line.startswith("#"))}
    assert secrets["ECODEMO_WRITER_PASSWORD"] in env["ECODEMO_DATABASE_URL"]
    assert secrets["POSTGRES_PASSWORD"] not in json.dumps(resolved["services"]["grafana"])


def test_compose_fails_fast_on_the_unfilled_example(cli: list[str]) -> None:
    """`.env.example` has empty secrets: compose must refuse and name one, not start blank."""
    out = _run(cli, "--env-file", ".env.example", "config")
    assert out.returncode != 0
    assert re.search(r"set [A-Z_]*(PASSWORD|SECRET|KEY)[A-Z_]* in \.env", out.stderr), out.stderr


def test_missing_single_secret_is_named(cli: list[str], filled_env: Path) -> None:
    lines = [ln for ln in filled_env.read_text().splitlines()
             if not ln.startswith("GRAFANA_ADMIN_PASSWORD=")]
    filled_env.write_text("\n".join(lines) + "\n")
    out = _run(cli, "--env-file", str(filled_env), "config")
    assert out.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in out.stderr


def test_cluster_override_parses(cli: list[str], filled_env: Path) -> None:
    out = _run(cli, "--env-file", str(filled_env), "-f", "docker-compose.yml",
               "-f", "docker-compose.cluster.yml", "config")
    assert out.returncode == 0, out.stderr
    resolved = yaml.safe_load(out.stdout)
    assert resolved["networks"]["default"]["external"] is True
    worker = resolved["services"]["airflow-worker"]
    assert worker["hostname"] == env_example()["ECODEMO_WORKER_NAME"]
    for svc in resolved["services"].values():  # joining machines publish nothing new
        assert set(svc.get("ports") or []) <= {p for s in UI_SERVICES for p in
                                               (resolved["services"][s].get("ports") or [])}


# --- structure (no CLI needed) ---------------------------------------------------------

def _bind_sources(service: dict[str, Any]) -> list[str]:
    out = []
    for vol in service.get("volumes") or []:
        source = vol["source"] if isinstance(vol, dict) else vol.split(":", 1)[0]
        if source.startswith((".", "/")):
            out.append(source)
    return out


def test_every_mounted_path_exists_in_the_repository(compose: dict[str, Any]) -> None:
    mounted = 0
    for name, svc in compose["services"].items():
        for source in _bind_sources(svc):
            assert not source.startswith("/"), f"{name} mounts an absolute host path {source}"
            assert (REPO / source).exists(), f"{name} mounts {source}, missing from the repository"
            mounted += 1
        build = svc.get("build")
        if build:
            assert (REPO / build["context"] / build.get("dockerfile", "Dockerfile")).is_file()
    assert mounted >= 5  # dags, sensors, models, provisioning, dashboards


def test_mounts_cover_dags_sensors_models_and_grafana(compose: dict[str, Any]) -> None:
    sched = compose["services"]["airflow-scheduler"]["volumes"]
    for folder in ("dags", "sensors", "models"):
        assert any(v.startswith(f"./{folder}:/opt/airflow/{folder}") for v in sched), folder
    graf = compose["services"]["grafana"]["volumes"]
    assert "./dashboards/provisioning:/etc/grafana/provisioning:ro" in graf
    # the dashboards come from the volume ecodemo writes (tests/deploy/test_compose_publish.py)
    assert "grafana-dashboards:/var/lib/grafana/dashboards:ro" in graf


def test_every_variable_is_documented_and_secrets_have_no_default() -> None:
    documented = env_example()
    used: dict[str, set[str]] = {}
    for path in (COMPOSE, CLUSTER):
        for name, mods in _vars(path.read_text(encoding="utf-8")).items():
            used.setdefault(name, set()).update(mods)
    missing = sorted(set(used) - set(documented))
    assert not missing, f"read by compose but not in .env.example: {missing}"
    unused = sorted(set(documented) - set(used) - {"COMPOSE_PROFILES"})
    assert not unused, f"in .env.example but read by no compose file: {unused}"
    for name, mods in used.items():
        if _SECRET_RE.search(name):
            assert documented[name] == "", f".env.example ships a value for secret {name}"
            assert any(m.startswith(":?") for m in mods), f"{name} is not required (:?)"
            assert not any(m.startswith((":-", "-")) for m in mods), f"{name} has a default"


def test_only_the_two_uis_are_published(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        assert svc.get("network_mode") != "host", name
        ports = svc.get("ports") or []
        if name not in UI_SERVICES:
            assert not ports, f"{name} publishes {ports}"
            continue
        assert len(ports) == 1
        assert str(ports[0]).endswith(f":{UI_SERVICES[name]}"), ports
    assert "ports" not in compose["services"]["timescaledb"]
    published = [str(p) for svc in compose["services"].values() for p in svc.get("ports") or []]
    assert not [p for p in published if re.search(r"\b(5432|6379)\b", p)], published


def test_images_are_pinned_and_services_are_wired(compose: dict[str, Any]) -> None:
    svcs = compose["services"]
    assert re.fullmatch(r"timescale/timescaledb:\d+\.\d+\.\d+-pg17", svcs["timescaledb"]["image"])
    assert re.fullmatch(r"grafana/grafana:11\.6\.\d+", svcs["grafana"]["image"])
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+-\w+", svcs["redis"]["image"])
    assert "pg_isready" in " ".join(svcs["timescaledb"]["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in svcs["timescaledb"]["volumes"])
    init = " ".join(svcs["ecodemo-init"]["command"])
    assert "ecodemo db upgrade" in init and "ecodemo db roles" in init
    assert "${POSTGRES_USER}" in svcs["ecodemo-init"]["environment"]["ECODEMO_DATABASE_URL"]
    commands = {tuple(s.get("command") or ()) for s in svcs.values()}
    for cmd in ("api-server", "scheduler", "dag-processor", "triggerer"):
        assert (cmd,) in commands, cmd
    env = svcs["airflow-scheduler"]["environment"]
    sync = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert sync.startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+asyncpg://")
    # Airflow's metadata lives in its own database, not in ecodemo's
    assert sync.rsplit("/", 1)[1] != "${POSTGRES_DB}"
    assert "ECODEMO_WRITER_USER" in env["ECODEMO_DATABASE_URL"]
    for name in ("redis", "airflow-worker"):
        assert svcs[name]["profiles"] == ["celery"]
    assert svcs["airflow-worker"]["command"] == ["celery", "worker"]


# --- make-env.sh ----------------------------------------------------------------------

def test_make_env_fills_every_secret_and_keeps_it_private(filled_env: Path) -> None:
    values = dict(line.split("=", 1) for line in filled_env.read_text().splitlines()
                  if "=" in line and not line.startswith("#"))
    assert set(values) == set(env_example())
    for key, value in values.items():
        assert value, f"{key} left empty"
        if _SECRET_RE.search(key):
            assert len(value) >= 32 and re.fullmatch(r"[A-Za-z0-9_=-]+", value), key
    assert len(set(v for k, v in values.items() if _SECRET_RE.search(k))) == sum(
        1 for k in values if _SECRET_RE.search(k)), "two secrets share a value"
    assert stat.S_IMODE(filled_env.stat().st_mode) == 0o600
    again = subprocess.run(["bash", str(REPO / "deploy" / "make-env.sh"), str(filled_env)],
                           capture_output=True, text=True, check=False)
    assert again.returncode != 0 and "exists" in again.stderr


# --- Grafana provisioning ---------------------------------------------------------------

PROVISIONING = REPO / "dashboards" / "provisioning"


def _datasources() -> list[dict[str, Any]]:
    out = []
    for path in sorted((PROVISIONING / "datasources").glob("*.y*ml")):
        doc = load_yaml(path)
        assert doc["apiVersion"] == 1, path
        out.extend(doc.get("datasources") or [])
    return out


def test_provisioning_yaml_is_valid_and_uses_passed_variables(compose: dict[str, Any]) -> None:
    files = sorted(PROVISIONING.rglob("*.y*ml"))
    assert files, "no provisioning YAML"
    grafana_env = set(compose["services"]["grafana"]["environment"])
    for path in files:
        load_yaml(path)  # raises on invalid YAML
        for name in _vars(path.read_text(encoding="utf-8")):
            assert name in grafana_env, f"{path.name} reads ${name}, not passed to grafana"
    ds = _datasources()
    assert [d["uid"] for d in ds].count("ecodemo-postgres") == 1
    pg = next(d for d in ds if d["uid"] == "ecodemo-postgres")
    assert pg["type"] == "grafana-postgresql-datasource"
    assert pg["url"].split(":")[0] in compose["services"]
    assert "password" in pg.get("secureJsonData", {}) and "password" not in pg
    providers = [p for f in sorted((PROVISIONING / "dashboards").glob("*.y*ml"))
                 for p in load_yaml(f)["providers"]]
    assert any(p["options"]["path"] == "/var/lib/grafana/dashboards" for p in providers)


def _datasource_uids(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and isinstance(ds.get("uid"), str):
            found.add(ds["uid"])
        for value in node.values():
            found |= _datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            found |= _datasource_uids(value)
    return found


def test_dashboards_use_the_provisioned_datasource() -> None:
    boards = sorted(p for p in (REPO / "dashboards").rglob("*.json")
                    if PROVISIONING not in p.parents)
    if not boards:
        pytest.skip("dashboards/ holds no dashboard JSON yet (written by the dashboards work)")
    provisioned = {d["uid"] for d in _datasources()}
    for path in boards:
        uids = {u for u in _datasource_uids(json.loads(path.read_text(encoding="utf-8")))
                if not u.startswith(("$", "-- ")) and u not in ("grafana", "-- Grafana --")}
        assert uids, f"{path.name} references no datasource"
        assert uids <= provisioned, f"{path.name} uses {uids - provisioned}"
