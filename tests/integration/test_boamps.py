"""Measured runs exported in Boavizta's BoAmps format, validated against its JSON schemas.

The schemas are minimal copies (CC BY 4.0, see tests/fixtures/boamps/NOTICE.md). The measure
schema was not available offline: measures are checked with CodeCarbon's BoAmpsMeasure class.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from codecarbon.output_methods.boamps import BoAmpsMeasure
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from ecodemo.energy.boamps import write_boamps
from ecodemo.metering import track_run

SCHEMAS = Path(__file__).resolve().parents[1] / "fixtures" / "boamps"
BASE = "https://raw.githubusercontent.com/Boavizta/BoAmps/main/model/"


def _validator() -> Draft4Validator:
    resources = []
    for name in ("algorithm", "dataset", "hardware"):
        schema = json.loads((SCHEMAS / f"{name}_schema.json").read_text(encoding="utf-8"))
        resources.append((BASE + f"{name}_schema.json", Resource(schema, DRAFT4)))
    # not vendored (unavailable offline): an unconstrained object, measures checked below
    resources.append((BASE + "measure_schema.json", Resource({"type": "object"}, DRAFT4)))
    report = json.loads((SCHEMAS / "report_schema.json").read_text(encoding="utf-8"))
    return Draft4Validator(report, registry=Registry().with_resources(resources))


def test_one_valid_boamps_file_per_stage_and_model(settings, conn, tmp_path) -> None:
    rng = np.random.default_rng(0)
    for stage, model, rung in (("train", "bike-lgbm_small-v2", None),
                               ("predict", "bike-lgbm_small-v2", None),
                               ("predict", "bike-lgbm_small-v2", None),
                               ("train", None, "climatology")):
        with track_run(settings, stage, sensor_kind="bike", model_id=model,
                       details={"rung": rung} if rung else {}):
            np.linalg.svd(rng.normal(size=(300, 300)))
    with track_run(settings, "ingest", record=True) as failed_only:
        pass
    conn.execute("UPDATE compute_runs SET energy_kwh = NULL WHERE run_id = %s",
                 (failed_only.run_id,))   # a run whose measurement failed: nothing to report

    paths = write_boamps(conn, tmp_path / "boamps", country="FRA")
    names = sorted(p.name for p in paths)
    assert names == ["boamps-predict-bike-lgbm_small-v2.json", "boamps-train-bike-climatology.json",
                     "boamps-train-bike-lgbm_small-v2.json"]
    validator = _validator()
    for path in paths:
        report = json.loads(path.read_text(encoding="utf-8"))
        errors = sorted(validator.iter_errors(report), key=str)
        assert not errors, f"{path.name}: {errors[0].message}"
        for m in report["measures"]:
            assert BoAmpsMeasure.from_dict(m).power_consumption == m["powerConsumption"] > 0
        assert report["quality"] in ("high", "low")
        assert report["environment"]["country"] == "FRA"
    predict = json.loads((tmp_path / "boamps" / names[0]).read_text(encoding="utf-8"))
    assert predict["task"]["taskStage"] == "inference" and len(predict["measures"]) == 2
    rows = conn.execute("SELECT sum(energy_kwh) FROM compute_runs WHERE stage = 'predict'"
                        ).fetchone()[0]
    assert sum(m["powerConsumption"] for m in predict["measures"]) == pytest.approx(rows)
    # the schema is a real check: a report without its task is refused
    assert list(validator.iter_errors({k: v for k, v in predict.items() if k != "task"}))
