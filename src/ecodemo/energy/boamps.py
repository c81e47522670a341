"""The measured runs in Boavizta's BoAmps report format: one JSON file per stage and model.

Built with CodeCarbon's own BoAmps data classes (``codecarbon.output_methods.boamps``), from
the ``compute_runs`` rows rather than a live tracker, so every recorded run can be exported
after the fact. Each file holds one measure per measured run (unmeasured runs have no energy to
report and are counted in the task description instead). ``quality`` follows the run's
measurement band: hardware counters 'high' (BoAmps: +/-10 %), estimates 'low' (+/-50 %, the
band that contains CodeCarbon's up-to-40 % error without counters).
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from codecarbon.output_methods.boamps import (
    BoAmpsAlgorithm,
    BoAmpsDataset,
    BoAmpsEnvironment,
    BoAmpsHardware,
    BoAmpsHeader,
    BoAmpsInfrastructure,
    BoAmpsMeasure,
    BoAmpsPublisher,
    BoAmpsReport,
    BoAmpsSoftware,
    BoAmpsTask,
)
from codecarbon.output_methods.boamps.mapper import BOAMPS_FORMAT_SPEC_URI, BOAMPS_FORMAT_VERSION

from ecodemo.models.baselines import BASELINES

#: compute_runs.stage -> BoAmps taskStage
TASK_STAGE = {"ingest": "datacreation", "train": "training", "predict": "inference",
              "backtest": "evaluation", "evaluate": "evaluation", "report": "evaluation",
              "publish": "evaluation"}
_NAMESPACE = uuid.UUID("6f1c1a52-5d0e-4f43-9a55-6b3c2f0e7a11")   # stable report ids

_RUNS = """
SELECT c.run_id, c.stage, c.model_id, c.sensor_kind, c.details->>'rung' AS rung,
       coalesce(m.name, c.details->>'rung') AS model_name, c.started_at, c.duration_s,
       c.energy_kwh, c.measurement_method, c.cpu_model, c.cpu_count, c.ram_total_gb,
       c.codecarbon_version, c.carbon_intensity_g_per_kwh, c.details->>'purpose' AS purpose
FROM compute_runs c LEFT JOIN models m ON m.model_id = c.model_id
ORDER BY c.started_at
"""


def _when(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _key(run: dict[str, Any]) -> tuple[str, str]:
    """(stage, model): the model id, else the kind's rung (ladder runs), else the kind."""
    kind = run["sensor_kind"] or "all-kinds"
    model = run["model_id"] or (f"{kind}-{run['rung']}" if run["rung"] else kind)
    return run["stage"], model


def _algorithm(name: str | None) -> BoAmpsAlgorithm:
    if name in BASELINES:
        return BoAmpsAlgorithm(algorithm_type="baseline", algorithm_name=name)
    if name and name.startswith("lgbm"):
        import lightgbm

        return BoAmpsAlgorithm(training_type="supervisedLearning",
                               algorithm_type="gradientBoostedTrees", algorithm_name=name,
                               framework="lightgbm", framework_version=lightgbm.__version__)
    return BoAmpsAlgorithm(algorithm_name=name or "none")


def report_for(stage: str, model: str, runs: list[dict[str, Any]],
               country: str) -> dict[str, Any]:
    """One BoAmps report (a dict in BoAmps' camelCase) for the runs of one stage and model."""
    measured = [r for r in runs if r["energy_kwh"] is not None]
    first = runs[0]
    name = next((r["model_name"] for r in runs if r["model_name"]), None)
    estimated = any(not (r["measurement_method"] or "").startswith("measured") for r in measured)
    task = BoAmpsTask(
        task_stage=TASK_STAGE.get(stage, stage), task_family="timeSeriesForecasting",
        nb_request=float(len(runs)) if stage == "predict" else None,
        algorithms=[_algorithm(name)],
        dataset=[BoAmpsDataset(data_usage="input", data_type="tabular",
                               source="public" if first["sensor_kind"] else "other")],
        task_description=(f"ecodemo {stage} runs of {model} (kind {first['sensor_kind'] or 'all'}"
                          f", purpose {first['purpose'] or stage}): {len(measured)} measured, "
                          f"{len(runs) - len(measured)} not measured (no energy to report)"))
    components = [BoAmpsHardware(component_type="cpu", component_name=first["cpu_model"],
                                 nb_component=int(first["cpu_count"] or 1))]
    if first["ram_total_gb"]:
        components.append(BoAmpsHardware(component_type="ram", nb_component=1,
                                          memory_size=int(round(first["ram_total_gb"]))))
    report = BoAmpsReport(
        header=BoAmpsHeader(
            licensing="unknown", format_version=BOAMPS_FORMAT_VERSION,
            format_version_specification_uri=BOAMPS_FORMAT_SPEC_URI,
            report_id=str(uuid.uuid5(_NAMESPACE, f"{stage}/{model}/{len(runs)}/"
                                                 f"{runs[-1]['run_id']}")),
            report_datetime=_when(datetime.now(UTC)), report_status="final",
            publisher=BoAmpsPublisher(name="ecodemo", project_name="ecodemo",
                                      confidentiality_level="public")),
        task=task,
        measures=[BoAmpsMeasure(measurement_method="codecarbon",
                                version=r["codecarbon_version"],
                                power_consumption=float(r["energy_kwh"]),
                                measurement_duration=float(r["duration_s"] or 0.0),
                                measurement_date_time=_when(r["started_at"]))
                  for r in measured],
        software=BoAmpsSoftware(language="python"),
        infrastructure=BoAmpsInfrastructure(infra_type="other", components=components),
        environment=BoAmpsEnvironment(country=country),
        quality="low" if estimated else "high")
    out: dict[str, Any] = report.to_dict()
    return out


def write_boamps(conn: psycopg.Connection, out_dir: Path, country: str) -> list[Path]:
    """Write one BoAmps file per (stage, model) with at least one measured run; returns paths."""
    cur = conn.execute(_RUNS)
    cols = [d.name for d in cur.description or []]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in cur.fetchall():
        run = dict(zip(cols, row, strict=True))
        groups[_key(run)].append(run)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for (stage, model), runs in sorted(groups.items()):
        if not any(r["energy_kwh"] is not None for r in runs):
            continue
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{stage}-{model}")
        path = out_dir / f"boamps-{safe}.json"
        path.write_text(json.dumps(report_for(stage, model, runs, country), indent=2),
                        encoding="utf-8")
        paths.append(path)
    return paths
