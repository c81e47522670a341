"""Publishing by file provisioning (what docker compose does): the dashboards land, whole and
readable, in the folder a Grafana file provider reads; no Grafana server or credential involved.

Grafana itself cannot run here: what it would read is checked the way its file provider reads
(every ``*.json`` of the folder, uid and title, files readable by another user).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from ecodemo import pipeline
from ecodemo.config import Settings
from ecodemo.dashboards.build import build_all, render
from ecodemo.errors import ConfigError, PublishError
from tests.integration.cli_helpers import cli_env, run_cli


def provisioned(folder: Path) -> dict[str, dict]:
    """uid -> dashboard, as a Grafana file provider would load ``folder``."""
    boards = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
    uids = [b["uid"] for b in boards]
    assert len(set(uids)) == len(uids), uids
    assert all(b.get("title") for b in boards)
    return {b["uid"]: b for b in boards}


def test_publish_writes_what_grafana_provisions(tmp_path: Path) -> None:
    folder = tmp_path / "grafana-dashboards"
    s = Settings(grafana_dashboards_dir=folder, state_dir=tmp_path / "state")
    assert pipeline.grafana_configured(s)
    first = pipeline.publish(s)
    assert first["mode"] == "provisioning" and len(first["written"]) == 3
    expected = build_all("fr")
    assert provisioned(folder) == {d["uid"]: d for d in expected.values()}
    for name, data in expected.items():
        path = folder / name
        assert path.read_text(encoding="utf-8") == render(data)
        assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044  # Grafana runs as another uid
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected)  # no temp file left

    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again = pipeline.publish(s)
    assert again["written"] == [] and len(again["unchanged"]) == 3
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes  # no re-import

    english = pipeline.publish(s.model_copy(update={"dashboards_lang": "en"}))
    assert english["lang"] == "en" and len(english["written"]) == 3
    assert provisioned(folder) == {d["uid"]: d for d in build_all("en").values()}


def test_a_stale_dashboard_is_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "dash"
    folder.mkdir()
    (folder / "ecodemo-models.json").write_text('{"uid": "ecodemo-models", "title": "old"}')
    res = pipeline.publish(Settings(grafana_dashboards_dir=folder))
    assert "ecodemo-models.json" in res["written"]
    assert provisioned(folder)["ecodemo-models"] == build_all("fr")["ecodemo-models.json"]


def test_both_paths_set_is_refused(tmp_path: Path) -> None:
    s = Settings(grafana_dashboards_dir=tmp_path, grafana_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="not both"):
        pipeline.publish(s)
    assert not list(tmp_path.iterdir())


def test_unwritable_folder_is_one_line(tmp_path: Path) -> None:
    """A file where the folder should be (as root, a read-only mode would not stop us)."""
    folder = tmp_path / "not-a-folder"
    folder.write_text("x")
    with pytest.raises(PublishError, match=f"cannot write dashboards into {folder}: "):
        pipeline.publish(Settings(grafana_dashboards_dir=folder))
    assert folder.read_text() == "x"


def test_cli_publish_provisions(tmp_path: Path) -> None:
    folder = tmp_path / "grafana-dashboards"
    env = cli_env(ECODEMO_GRAFANA_DASHBOARDS_DIR=str(folder), ECODEMO_DASHBOARDS_LANG="en",
                  ECODEMO_STATE_DIR=str(tmp_path / "state"))
    out = run_cli(["dashboards", "publish"], env)
    assert out.returncode == 0, out.stderr
    assert f"provisioned 3 dashboard(s) in {folder} (3 written, 0 unchanged)" in out.stdout
    assert provisioned(folder) == {d["uid"]: d for d in build_all("en").values()}
    both = run_cli(["dashboards", "publish"], {**env, "ECODEMO_GRAFANA_URL": "http://x"})
    assert both.returncode == 2 and "not both" in both.stderr + both.stdout
