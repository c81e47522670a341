"""`ecodemo demo` end to end: the real pipeline on the bundled snapshot, its outputs, a rerun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from ecodemo.units import RENEWABLE_KINDS, TRANSPORT_KINDS
from tests.pipeline_rows import FilledStore

COMPUTE_KEYS = {"ingest_kwh", "train_kwh", "predict_kwh", "total_kwh", "total_kgco2e", "method"}


def test_demo_writes_outputs_and_a_complete_summary(filled_store: FilledStore) -> None:
    out = filled_store.workdir
    assert (out / "report.html").stat().st_size > 10_000
    assert sorted(p.name for p in (out / "dashboards").glob("*.json")) == [
        "ecodemo-frugality.json", "ecodemo-models.json", "ecodemo-territory.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert {"generated_at", "database", "targets"} <= summary.keys()
    kinds = {t["kind"] for t in summary["targets"]}
    by_kind = {t["kind"]: t for t in summary["targets"]}
    assert by_kind["bike"]["weather"]["backtest"] == "observed_standing_in"   # Paris-Orly SYNOP
    assert by_kind["wind"]["weather"]["backtest"] == "none"
    assert kinds & set(RENEWABLE_KINDS) and kinds & set(TRANSPORT_KINDS)
    for t in summary["targets"]:
        assert t["sensors"] >= 1 and t["chosen_model"]
        assert COMPUTE_KEYS <= t["compute"].keys()
        assert {"avoided_kwh", "avoided_kgco2e", "assumptions"} <= t["benefit"].keys()
        # every stage the demo ran was measured: no silent zeros, no missing figures
        assert t["compute"]["train_kwh"] > 0 and t["compute"]["predict_kwh"] > 0
        assert t["compute"]["total_kwh"] >= t["compute"]["train_kwh"]
        assert "estimated" in t["compute"]["method"] or "RAPL" in t["compute"]["method"]
        assert t["benefit"]["assumptions"], "assumptions are printed with the numbers"
        # where the weather came from: the snapshot has no weather forecast as issued, so the
        # 48 h forecast reads none; a backtest may let the Paris observations stand in
        assert t["weather"]["forecast"] == "none"
        assert t["weather"]["backtest"] in {"observed_standing_in", "none"}
        proto = t["backtest_protocol"]
        assert proto["selection"]["last_origin"] < proto["test"]["first_origin"]
        assert t["day_ahead"]["n"] > 0 and "skill_vs_seasonal_naive" in t["day_ahead"]
        # the machine's manufacturing share (CO2e, not energy), a range from the Boavizta sheets
        emb = t["embodied"]
        assert emb["kgco2e_range"][0] < emb["kgco2e"] < emb["kgco2e_range"][1]
        assert "Boavizta" in emb["source"] and "upper bound" in emb["method"]
        if t["net_kgco2e"] is not None:
            assert abs(t["net_kgco2e"] - (t["benefit"]["avoided_kgco2e"]
                                          - t["compute"]["total_kgco2e"] - emb["kgco2e"])) < 1e-6
        # named counterfactual, ranges around every central figure, selection, saved/shifted
        b = t["benefit"]
        assert b["counterfactual"]["name"] and b["counterfactual"]["why"]
        assert b["energy_effect"] == ("shifted" if t["kind"] in RENEWABLE_KINDS else "saved")
        if b["energy_effect"] == "shifted":   # balancing energy is moved, never a kWh saved
            assert b["avoided_kwh"] is None and b["shifted_kwh"] is not None
            assert t["net_kwh"] is None
        lo, hi = b["avoided_kgco2e_range"]
        assert lo <= b["avoided_kgco2e"] <= hi
        lo, hi = t["compute"]["total_kwh_range"]
        assert lo < t["compute"]["total_kwh"] < hi        # estimated: a band, never a point
        assert t["compute"]["selection_kwh"] > 0          # every rung of the ladder counted
        lo, hi = t["net_kgco2e_range"]
        assert lo <= t["net_kgco2e"] <= hi
        assert "payback_hours_range" in t and b["breakeven"]["statement"]
        # the error reduction carries its bootstrap over the test days (the ladder stored its
        # errors per origin), and compute CO2 the range of its intensity: the snapshot has no
        # éCO2mix, so CodeCarbon's annual constant with its sourced range, wider than the band
        iv = b["error_reduction_interval"]
        assert iv is not None and iv["origins"] > 1
        assert iv["low"] <= b["counterfactual"]["error_reduction"] <= iv["high"]
        assert b["counterfactual"]["error_reduction_range"] == [iv["low"], iv["high"]]
        how = t["compute"]["co2_of_compute"]["annual_constant_range"]
        assert how["range"] == [0.57, 1.76] and "RTE" in how["range_source"]
        kg, (kg_lo, kg_hi) = t["compute"]["total_kgco2e"], t["compute"]["total_kgco2e_range"]
        kwh, (kwh_lo, kwh_hi) = t["compute"]["total_kwh"], t["compute"]["total_kwh_range"]
        assert kg_lo / kg < kwh_lo / kwh and kg_hi / kg > kwh_hi / kwh
    # the demo printed its progress and where the outputs are
    assert filled_store.log[-1].startswith("done in")
    assert str(out / "summary.json") in filled_store.log[-1]


def test_demo_leaves_complete_rows_in_every_table(filled_store: FilledStore) -> None:
    with psycopg.connect(filled_store.url) as c:
        for table in ("readings", "models", "model_choices", "forecasts", "compute_runs",
                      "evaluations", "balances"):
            assert c.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
        stages = {r[0] for r in c.execute("SELECT DISTINCT stage FROM compute_runs")}
        assert {"ingest", "train", "predict", "backtest", "evaluate"} <= stages
        # a complete row per run: energy and method, never a silent 0 for a failed measurement
        incomplete = c.execute(
            "SELECT count(*) FROM compute_runs WHERE energy_kwh IS NULL OR measurement_method "
            "IS NULL OR duration_s IS NULL OR codecarbon_version IS NULL").fetchone()[0]
        assert incomplete == 0
        # one promoted model per kind, and live accuracy of forecasts as issued
        promoted = c.execute("SELECT kind, count(*) FROM models WHERE status = 'promoted' "
                             "GROUP BY kind").fetchall()
        assert promoted and all(n == 1 for _k, n in promoted)
        assert c.execute("SELECT count(*) FROM evaluations WHERE source = 'live'").fetchone()[0]


def test_demo_cli_rerun_in_the_same_directory_is_safe(filled_store: FilledStore) -> None:
    """Second run through the CLI, same database and workdir: readings unchanged, outputs fresh."""
    with psycopg.connect(filled_store.url) as c:
        before = c.execute("SELECT count(*), sum(value) FROM readings").fetchone()
    env = {**os.environ,
           "ECODEMO_DATABASE_URL": filled_store.url,
           "ECODEMO_STATE_DIR": str(filled_store.settings.state_dir),
           "ECODEMO_MODELS_DIR": str(filled_store.settings.models_dir)}
    workdir: Path = filled_store.workdir
    first_mtime = (workdir / "summary.json").stat().st_mtime
    proc = subprocess.run([sys.executable, "-m", "ecodemo.cli", "demo", "--workdir", str(workdir)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "0 inserted, 0 updated" in proc.stdout
    assert (workdir / "summary.json").stat().st_mtime > first_mtime
    with psycopg.connect(filled_store.url) as c:
        assert c.execute("SELECT count(*), sum(value) FROM readings").fetchone() == before
