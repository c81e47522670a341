"""Parse the DAG folder as Airflow does and print what the tests check, as JSON (test helper).

Run in a subprocess (Airflow reads its configuration once per process):

    python inspect_dags.py DAGS_FOLDER            -> {"import_errors", "dags": {...}}
    python inspect_dags.py --time DAGS_FOLDER FILE -> seconds to import FILE and the modules
                                                      it loaded, after Airflow's own warm-up
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def _task(t: Any) -> dict[str, Any]:
    def seconds(v: Any) -> float | None:
        return v.total_seconds() if hasattr(v, "total_seconds") else v

    return {
        "task_id": t.task_id, "retries": t.retries,
        "retry_exponential_backoff": t.retry_exponential_backoff,
        "retry_delay_s": seconds(t.retry_delay), "max_retry_delay_s": seconds(t.max_retry_delay),
        "mapped": bool(getattr(t, "is_mapped", False)),
        "outlets": sorted(getattr(o, "uri", str(o)) for o in (t.outlets or [])),
        "mode": getattr(t, "mode", None), "timeout_s": seconds(getattr(t, "timeout", None)),
        "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
        "upstream": sorted(t.upstream_task_ids),
    }


def _asset_uris(condition: Any) -> list[str]:
    """URIs of the assets in a schedule condition (an Asset, or AssetAny/AssetAll of them)."""
    if condition is None:
        return []
    if hasattr(condition, "objects"):
        return [u for o in condition.objects for u in _asset_uris(o)]
    return [condition.uri]


def inspect(folder: Path) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.serialization.encoders import coerce_to_core_timetable

    bag = BundleDagBag(dag_folder=folder, bundle_path=folder)
    dags = {}
    for dag_id, dag in bag.dags.items():
        core = coerce_to_core_timetable(dag.timetable)
        condition = getattr(dag.timetable, "asset_condition", None)
        inner = getattr(dag.timetable, "timetable", dag.timetable)
        dags[dag_id] = {
            "fileloc": dag.fileloc, "catchup": dag.catchup, "tags": sorted(dag.tags),
            "doc_md": dag.doc_md, "max_active_runs": dag.max_active_runs,
            "start_date": dag.start_date.isoformat() if dag.start_date else None,
            "start_tz": str(dag.start_date.tzinfo) if dag.start_date else None,
            "timetable": type(core).__name__, "summary": core.summary,
            "cron": getattr(inner, "expression", None),
            "cron_tz": str(getattr(inner, "timezone", "")) or None,
            "schedule_assets": sorted(_asset_uris(condition)),
            "tasks": [_task(t) for t in dag.tasks],
        }
    return {"import_errors": bag.import_errors,
            "files": sorted(Path(s.file).name for s in bag.dagbag_stats), "dags": dags}


def time_import(folder: Path, file: Path) -> dict[str, Any]:
    """Import one DAG file the way the DAG processor would, after Airflow's own imports."""
    import importlib.util

    from airflow.sdk import DAG, Asset, Param, PokeReturnValue, task  # noqa: F401

    with DAG("warm_up", schedule=None):  # load the TaskFlow machinery the processor has loaded
        task(lambda: None, task_id="noop")()
    sys.path.append(str(folder))
    before = set(sys.modules)
    t0 = time.perf_counter()
    spec = importlib.util.spec_from_file_location(f"dagfile_{file.stem}", file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seconds = time.perf_counter() - t0
    return {"file": file.name, "seconds": seconds, "new_modules": sorted(set(sys.modules) - before)}


if __name__ == "__main__":
    if sys.argv[1] == "--time":
        out = time_import(Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve())
    else:
        out = inspect(Path(sys.argv[1]).resolve())
    print("RESULT " + json.dumps(out, default=str))
