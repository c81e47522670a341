"""Every DAG file imports without error, fast, and without ecodemo's heavy dependencies."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dags.conftest import DAGS, HERE, run_json

DAG_FILES = sorted(p for p in DAGS.glob("*.py") if p.name != "ecodemo_dag_common.py")
EXPECTED = {"ecodemo_ingest", "ecodemo_train", "ecodemo_forecast", "ecodemo_evaluate",
            "ecodemo_publish", "ecodemo_weather_forecasts"}
# What a DAG file must not pull in at parse time: the package and its heavy dependencies.
FORBIDDEN = ("ecodemo", "pandas", "numpy", "pyarrow", "lightgbm", "codecarbon", "psycopg",
             "sklearn", "grafana_client", "httpx")
# "Well under a second": the DAG processor parses every file every 30 s by default.
MAX_IMPORT_S = 0.5


def test_dagbag_imports_every_file_without_error(parse_env: dict[str, str]) -> None:
    out, log = run_json([str(HERE / "inspect_dags.py"), str(DAGS)], parse_env, timeout=120)
    assert out["import_errors"] == {}, out["import_errors"]
    assert set(out["dags"]) == EXPECTED
    # Each DAG file defines exactly one DAG and the shared module is not parsed as a DAG file.
    assert sorted(Path(d["fileloc"]).stem for d in out["dags"].values()) == sorted(EXPECTED)
    assert "ecodemo_dag_common.py" not in out["files"]


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_fast_and_light(path: Path, parse_env: dict[str, str]) -> None:
    out, log = run_json([str(HERE / "inspect_dags.py"), "--time", str(DAGS), str(path)],
                        parse_env, timeout=120)
    print(f"{path.name}: {out['seconds'] * 1000:.1f} ms")
    heavy = [m for m in out["new_modules"] if m.split(".")[0] in FORBIDDEN]
    assert heavy == [], f"{path.name} imports {heavy} at parse time"
    assert out["seconds"] < MAX_IMPORT_S, f"{path.name} took {out['seconds']:.3f} s to import"
