"""Static checks of the compose publish path: ecodemo writes the dashboards into the folder
Grafana provisions from (a named volume), so no Grafana credential reaches the Airflow tasks.

What is checked: the volume Grafana's file provider reads is the one the task-running services
and the init service mount read-write, at the folder ECODEMO_GRAFANA_DASHBOARDS_DIR names; Grafana
mounts it read-only; the init service seeds it; the image makes the mount point writable for the
tasks' group; and no Grafana URL, token or password is given to Airflow. The publish path itself
runs for real in tests/dags/test_publish_provisioning.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import REPO, clean_env, compose_cli, load_yaml

PROVIDERS = REPO / "dashboards" / "provisioning" / "dashboards"
# services that run ecodemo tasks (LocalExecutor: the scheduler; celery profile: the workers)
TASK_SERVICES = ("airflow-scheduler", "airflow-worker")


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read_only) for the service's volumes (short syntax)."""
    out = {}
    for vol in service.get("volumes") or []:
        parts = vol.split(":")
        out[parts[1]] = (parts[0], len(parts) > 2 and "ro" in parts[2].split(","))
    return out


def _provider_path() -> str:
    paths = [p["options"]["path"] for f in sorted(PROVIDERS.glob("*.y*ml"))
             for p in load_yaml(f)["providers"] if p["type"] == "file"]
    assert len(paths) == 1, paths
    return str(paths[0])


def test_grafana_reads_a_named_volume_at_its_provider_path(compose: dict[str, Any]) -> None:
    source, read_only = _mounts(compose["services"]["grafana"])[_provider_path()]
    assert source in (compose.get("volumes") or {}), f"{source} is not a named volume"
    assert read_only, "Grafana must not be able to change what ecodemo publishes"
    provider = next(p for f in sorted(PROVIDERS.glob("*.y*ml")) for p in load_yaml(f)["providers"])
    assert 0 < provider["updateIntervalSeconds"] <= 60  # a publish shows within a minute
    assert provider["allowUiUpdates"] is False  # the files stay the truth


def test_tasks_and_init_write_that_volume_where_the_setting_points(
        compose: dict[str, Any]) -> None:
    volume, _ = _mounts(compose["services"]["grafana"])[_provider_path()]
    for name in (*TASK_SERVICES, "ecodemo-init"):
        svc = compose["services"][name]
        folder = svc["environment"]["ECODEMO_GRAFANA_DASHBOARDS_DIR"]
        source, read_only = _mounts(svc)[folder]
        assert source == volume and not read_only, name
        assert svc["environment"]["ECODEMO_DASHBOARDS_LANG"] in (
            "${ECODEMO_DASHBOARDS_LANG:-fr}", "fr", "en")


def test_init_seeds_the_dashboards_after_the_schema(compose: dict[str, Any]) -> None:
    """Grafana starts after ecodemo-init: the folder is never empty when it first scans."""
    steps = [s.strip() for s in " ".join(compose["services"]["ecodemo-init"]["command"])
             .split("&&")]
    assert steps[0] == "ecodemo db upgrade"
    assert "ecodemo dashboards publish" in steps
    grafana_after = compose["services"]["grafana"]["depends_on"]["ecodemo-init"]
    assert grafana_after["condition"] == "service_completed_successfully"


def test_no_grafana_credential_reaches_airflow(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        if name == "grafana":
            continue
        env = svc.get("environment") or {}
        for key in ("ECODEMO_GRAFANA_URL", "ECODEMO_GRAFANA_TOKEN", "ECODEMO_GRAFANA_USER",
                    "ECODEMO_GRAFANA_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
            assert key not in env, f"{name} gets {key}"
        assert "GRAFANA_ADMIN_PASSWORD" not in str(env), name


def test_image_makes_the_mount_point_writable_for_group_0() -> None:
    """A new named volume copies the owner and mode of the image's mount point."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    runtime = text[text.rindex("\nFROM "):]
    folder = "/opt/airflow/grafana-dashboards"
    assert re.search(rf"mkdir -p [^\n]*{folder}", runtime)
    assert re.search(rf"chown airflow:0 [^\n]*{folder}", runtime)
    assert re.search(rf"chmod 2?775 [^\n]*{folder}", runtime)
    assert runtime.rstrip().splitlines()[-1].startswith(("WORKDIR", "USER airflow"))
    assert "USER airflow" in runtime[runtime.index(folder):]


def test_compose_cli_resolves_both_parts(filled_env: Path) -> None:
    """`docker compose --profile mqtt config` with a .env from deploy/make-env.sh: the publish
    folder and the MQTT service come out wired, with the writer's login and no admin secret."""
    cli = compose_cli()
    if cli is None:
        pytest.skip("no compose CLI (apt-get install docker-compose)")
    out = subprocess.run([*cli, "--env-file", str(filled_env), "--profile", "mqtt", "config"],
                         cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    services = yaml.safe_load(out.stdout)["services"]
    secrets = dict(line.split("=", 1) for line in filled_env.read_text().splitlines()
                   if "=" in line and not line.startswith("#"))
    mqtt = services["ecodemo-mqtt"]
    assert mqtt["environment"]["ECODEMO_MQTT_PASSWORD"] == secrets["ECODEMO_MQTT_PASSWORD"]
    assert secrets["ECODEMO_WRITER_PASSWORD"] in mqtt["environment"]["ECODEMO_DATABASE_URL"]
    assert secrets["POSTGRES_PASSWORD"] not in json.dumps(mqtt)
    assert secrets["GRAFANA_ADMIN_PASSWORD"] not in json.dumps(
        {k: v for k, v in services.items() if k != "grafana"})
    for name in ("airflow-scheduler", "ecodemo-init"):
        env = services[name]["environment"]
        assert env["ECODEMO_GRAFANA_DASHBOARDS_DIR"] == "/opt/airflow/grafana-dashboards"
        assert env["ECODEMO_DASHBOARDS_LANG"] == secrets["ECODEMO_DASHBOARDS_LANG"]
