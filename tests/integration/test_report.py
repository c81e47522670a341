"""``ecodemo report``: json and csv carry every figure with its method, source and assumptions."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from ecodemo.cli import app
from ecodemo.energy.report import CSV_COLUMNS, build_report, to_csv
from ecodemo.energy.stages import evaluate
from ecodemo.metering import track_run
from tests.integration.cli_helpers import cli_env, run_cli


def _populate(settings, conn) -> None:
    model_id = "wind-lgbm_small-v1"
    conn.execute("INSERT INTO models (model_id, kind, name, version, status) "
                 "VALUES (%s, 'wind', 'lgbm_small', 1, 'promoted')", (model_id,))
    sensor = conn.execute("SELECT sensor_id FROM sensors WHERE kind = 'wind'").fetchone()[0]
    p0, p1 = datetime(2013, 1, 1, tzinfo=UTC), datetime(2013, 6, 1, tzinfo=UTC)
    for name, mid, mae in (("lgbm_small", model_id, 30.0), ("seasonal_naive", None, 80.0)):
        for sid in (sensor, "__all__"):
            conn.execute(
                """INSERT INTO evaluations (source, kind, model_name, model_id, sensor_id,
                       horizon_h, period_start, period_end, n, mae, nmae,
                       skill_vs_seasonal_naive)
                   VALUES ('backtest', 'wind', %s, %s, %s, 24, %s, %s, 500, %s, %s, %s)""",
                (name, mid, sid, p0, p1, mae, mae / 400, 1 - mae / 80.0))
    with track_run(settings, "train", sensor_kind="wind", model_id=model_id):
        sum(i * i for i in range(300_000))
    with track_run(settings, "predict", sensor_kind="wind", model_id=model_id):
        sum(i * i for i in range(100_000))
    conn.execute("""INSERT INTO compute_runs (run_id, stage, sensor_kind, started_at,
                        measurement_method) VALUES (%s, 'ingest', 'wind', %s,
                        'not measured: CodeCarbon failed (test)')""",
                 (str(uuid.uuid4()), datetime.now(UTC) - timedelta(minutes=5)))


def test_report_json_and_csv_carry_methods_and_assumptions(settings, conn,
                                                           snapshot_sites) -> None:
    _populate(settings, conn)
    evaluate(settings)
    rep = build_report(settings)
    text = json.dumps(rep)
    assert "SPEC 2314" in rep["framework"]
    need = [m for m in rep["need_for_ai"]["models"] if m["kind"] == "wind"]
    assert {m["model_name"] for m in need} == {"lgbm_small", "seasonal_naive"}
    bal = rep["balances"]["rows"]
    assert len(bal) == 1 and bal[0]["kind"] == "wind"
    # the unmeasured ingest run makes the balance incomplete, and it says so
    assert bal[0]["compute_kwh"] is None and bal[0]["method"].startswith("INCOMPLETE")
    assert bal[0]["assumptions"]["error_reduction_source"]["source"] == "backtest"
    assert "ESTIMATED" in rep["measured_footprint"]["method"]
    ingest = [r for r in rep["measured_footprint"]["by_stage_and_kind"]
              if r["stage"] == "ingest"][0]
    assert ingest["unmeasured_runs"] == 1 and ingest["energy_kwh"] is None
    train = [r for r in rep["measured_footprint"]["by_stage_and_kind"]
             if r["stage"] == "train"][0]
    assert train["energy_kwh"] > 0 and train["methods"].startswith(("estimated", "measured"))
    # every figure has a method and a source; benefit-model numbers say they are assumptions
    assert rep["figures"] and all(f["method"] is not None and f["source"]
                                  for f in rep["figures"])
    reserve = [f for f in rep["figures"] if f["figure"] == "reserve_g_per_kwh"
               and f["kind"] == "wind"][0]
    assert reserve["method"] == "assumption" and "IPCC" in reserve["source"]
    assert "share_of_error_balanced" in text
    # practices are checked in the store, each with its evidence, not claimed by hand
    practices = {p["practice"]: p for p in rep["frugal_practices"]}
    assert all(p["evidence"] and p["applied"] in (True, False, None) for p in practices.values())
    measured = practices["every run measured"]
    assert measured["applied"] is False and "1 not measured" in measured["evidence"]
    assert practices["retention of raw readings"]["applied"] in (True, False)
    balance_figures = {f["figure"] for f in rep["figures"] if f["section"] == "balance"}
    assert {"counterfactual", "energy_effect", "selection_kwh",
            "avoided_kgco2e_range", "net_kgco2e_range", "payback_hours_range"} <= balance_figures

    rows = list(csv.DictReader(io.StringIO(to_csv(rep))))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == len(rep["figures"])
    net = [r for r in rows if r["figure"] == "net_kgco2e"][0]
    assert net["value"] == "" and "INCOMPLETE" in net["method"]  # NULL, not 0
    assert json.loads(net["assumptions"])["unmeasured_runs"] == 1
    avoided = [r for r in rows if r["figure"] == "avoided_kgco2e"][0]
    assert float(avoided["value"]) > 0


def test_cli_report_csv_and_html(settings, conn, snapshot_sites, tmp_path, db_url) -> None:
    _populate(settings, conn)
    env = {"ECODEMO_DATABASE_URL": db_url, "ECODEMO_STATE_DIR": str(settings.state_dir)}
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate"], env=env)
    assert res.exit_code == 0, res.output
    assert "wind/wind-lgbm_small-v1" in res.output and "NULL (not measured)" in res.output
    out = tmp_path / "report.csv"
    res = runner.invoke(app, ["report", "--format", "csv", "--out", str(out)], env=env)
    assert res.exit_code == 0, res.output
    assert out.read_text(encoding="utf-8").startswith(",".join(CSV_COLUMNS))
    res = runner.invoke(app, ["report", "--format", "html"], env=env)
    assert res.exit_code != 0  # --out is required; one-line ConfigError
    page = tmp_path / "report.html"
    res = runner.invoke(app, ["report", "--format", "html", "--out", str(page)], env=env)
    assert res.exit_code == 0, res.output
    assert page.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")


def test_cli_report_english_html_and_pdf_needs_chromium(settings, conn, snapshot_sites,
                                                        tmp_path, db_url) -> None:
    _populate(settings, conn)
    evaluate(settings)
    env = {"ECODEMO_DATABASE_URL": db_url, "ECODEMO_STATE_DIR": str(settings.state_dir)}
    runner = CliRunner()
    page = tmp_path / "report-en.html"
    res = runner.invoke(app, ["report", "--format", "html", "--lang", "en", "--out", str(page)],
                        env=env)
    assert res.exit_code == 0, res.output
    text = page.read_text(encoding="utf-8")
    assert '<html lang="en">' in text and '<section id="verdict">' in text
    assert "Wind production" in text  # the one kind with a balance gets its card
    res = runner.invoke(app, ["report", "--format", "html", "--lang", "de", "--out", str(page)],
                        env=env)
    assert res.exit_code != 0
    # without a browser on PATH the PDF export says what is missing, in one line
    empty = tmp_path / "no-browser"
    empty.mkdir()
    proc = run_cli(["report", "--format", "pdf", "--out", tmp_path / "r.pdf"],
                   cli_env(ECODEMO_DATABASE_URL=db_url, ECODEMO_STATE_DIR=str(settings.state_dir),
                           PATH=str(empty)))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "apt-get install chromium" in lines[0]
    assert not (tmp_path / "r.pdf").exists()


def test_site_short_name_is_the_same_in_sql_and_python(conn) -> None:
    """The dashboards derive a site's display name in SQL, the report in Python: same text."""
    from ecodemo.dashboards.common import site_label_sql
    from ecodemo.dashboards.humanize import short_name

    names = ["Paris bike counter: 28 boulevard Diderot O-E (site 28, id 1)",
             "RTE eCO2mix Hauts-de-France regional solar production (MW, 30-min)",
             "Counter: Rue Saint-Antoine (Bastille -> Jacques Coeur) - hourly flow",
             "Short one", "Prefix: a very long street name that goes on and on forever"]
    for i, name in enumerate(names):
        conn.execute("INSERT INTO sites (site_id, name, kind, latitude, longitude) "
                     "VALUES (%s, %s, 'bike', 48.8, 2.3)", (f"sn-{i}", name))
    conn.execute("INSERT INTO sites (site_id, name, kind, latitude, longitude, attributes) "
                 "VALUES ('sn-x', 'Long official name', 'bike', 48.8, 2.3, "
                 "'{\"short_name\": \"Given\"}')")
    rows = conn.execute(f"SELECT s.site_id, s.name, {site_label_sql('s')} FROM sites s "
                        "WHERE s.site_id LIKE 'sn-%' ORDER BY 1").fetchall()
    got = {sid: label for sid, _name, label in rows}
    assert got.pop("sn-x") == "Given"   # the catalogue's field wins
    assert got == {f"sn-{i}": short_name(n) for i, n in enumerate(names)}
    assert got["sn-0"] == "28 boulevard Diderot O-E" and got["sn-4"].endswith("…")
