"""Run ecodemo DAGs with ``dag.test()`` and print their task states as JSON (test helper).

    python run_dag.py '{"dags_folder": ..., "runs": [{"dag_id": ..., "logical_date": ISO,
                                                      "conf": {...}}, ...]}'

Runs in a subprocess with AIRFLOW_HOME / AIRFLOW__* / ECODEMO_* set by the caller (Airflow
reads its configuration once per process). Several DAGs run in one process because starting
Airflow's in-process execution API costs about 15 s once. Retries are set to 0 here so that a
failing task fails the test at once instead of waiting for the DAG's backoff; the DAG files
themselves are not changed.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any


def main() -> int:
    spec = json.loads(sys.argv[1])
    folder = Path(spec["dags_folder"]).resolve()
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=folder, bundle_path=folder)
    if bag.import_errors:
        print("RESULT " + json.dumps({"import_errors": bag.import_errors, "runs": []}))
        return 2
    results: list[dict[str, Any]] = []
    for run in spec["runs"]:
        dag = bag.dags[run["dag_id"]]
        for t in dag.tasks:
            t.retries = 0
        dr = dag.test(logical_date=datetime.fromisoformat(run["logical_date"]),
                      run_conf=run.get("conf"))
        tis = {}
        for ti in dr.get_task_instances():
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            tis[key] = str(getattr(ti.state, "value", ti.state))
        results.append({"dag_id": dag.dag_id, "state": str(getattr(dr.state, "value", dr.state)),
                        "tasks": tis, "data_interval": [str(dr.data_interval_start),
                                                        str(dr.data_interval_end)]})
    print("RESULT " + json.dumps({"runs": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
