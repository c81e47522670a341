"""The embodied (manufacturing) share: the shipped Boavizta extract, the per-hour rate, the run
hours of a balance, a deployment's declared figure, and its place in the net (hand-checked)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ecodemo.energy import balance, benefit, embodied
from ecodemo.energy.ranges import Span
from ecodemo.errors import ConfigError

Y = 8760.0
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def test_shipped_extract_and_its_rate_by_hand() -> None:
    sheets = embodied.shipped_sheets()
    assert len(sheets) == 35 and all(s.lifetime_years == 4 for s in sheets)
    by_name = {s.name: s for s in sheets}
    # lowest: R6515, 8160 kg x 8 %; highest: R930, 13300 kg x 13.4 %; median (18th of 35):
    # C4130, 12700 kg x 9.5 %; each over 4 years
    rate = embodied.dataset_rate(sheets)
    assert by_name["Dell PowerEdge R6515"].manufacturing_kgco2e == pytest.approx(652.8)
    assert (rate.low, rate.central, rate.high) == pytest.approx(
        (8160 * 0.08 / (4 * Y), 12700 * 0.095 / (4 * Y), 13300 * 0.134 / (4 * Y)))
    assert by_name["Dell PowerEdge R930"].error_share == pytest.approx(1.0677)
    assert by_name["Dell PowerEdge R6515"].error_share is None   # not stated on that sheet


def test_a_row_without_manufacturing_share_is_a_line_error() -> None:
    text = ("Manufacturer,Name,Total (kgCO2eq),Lifetime,Error (%),Manufacturing,Sources\n"
            "Dell,X,100,4,,,u\n")
    with pytest.raises(ConfigError, match="x.csv: line 2: no manufacturing share"):
        embodied.parse_sheets(text, "x.csv")


def _runs(durations: list[float | None], weight: float = 1.0) -> list[balance.RunRow]:
    return [balance.RunRow(stage="predict", energy_kwh=0.01, emissions_kg=0.0003,
                           grid_emissions_kg=None, duration_s=d, weight=weight)
            for d in durations]


def test_run_hours_follow_the_energy_weights_and_factors() -> None:
    c = balance.component("selection", _runs([3600.0, 1800.0], weight=0.5),
                          Span(0.1, 0.2, 0.4), band=lambda m: 0.0)
    assert c.hours_span.pair() == pytest.approx([0.75 * 0.1, 0.75 * 0.4])
    assert c.hours_span.central == pytest.approx(0.75 * 0.2)
    assert balance.component("predict", _runs([60.0, None]),
                             band=lambda m: 0.0).hours_span is None


def test_declared_figure_replaces_the_dataset_and_enters_the_net() -> None:
    # 10 run hours on a server declared at 1000 kg [800, 1500] for 5 years [4, 6]
    e = embodied.embodied_of(Span.point(10.0), Span(800, 1000, 1500), Span(4, 5, 6),
                             declared_source="our server's sheet")
    assert (e.kgco2e_span.low, e.kgco2e, e.kgco2e_span.high) == pytest.approx(
        (10 * 800 / (6 * Y), 10 * 1000 / (5 * Y), 10 * 1500 / (4 * Y)))
    assert e.source == "our server's sheet" and e.machine_share == 1.0
    assert "upper bound" in e.method and e.as_dict()["unit"] == "kgCO2e (not energy)"

    parts = {name: balance.component(name, _runs([36000.0 if name == "predict" else 0.0]),
                                     band=lambda m: 0.0)
             for name in ("ingest", "selection", "train", "predict", "accounting")}
    av = benefit.Avoided(error_reduction=1, period_h=24, avoided_kwh=10, avoided_kgco2e=1.0,
                         kgco2e_per_unit_key=2.0, kwh_span=Span(5, 10, 20),
                         kgco2e_span=Span(0.5, 1.0, 2.0), per_unit_key_span=Span(1, 2, 4))
    b = balance.Balance(kind="bike", model_id="m", period_start=T0,
                        period_end=T0 + timedelta(hours=24), **parts, avoided=av,
                        key_name="k", key_value=0.5, method="test", embodied=e)
    compute = 5 * 0.0003                                 # five runs, band 0
    assert b.run_hours_span.central == pytest.approx(10.0)
    assert b.net_kgco2e == pytest.approx(1.0 - compute - 10 * 1000 / (5 * Y))
    assert b.net_kgco2e_span.pair() == pytest.approx(
        [0.5 - compute - 10 * 1500 / (4 * Y), 2.0 - compute - 10 * 800 / (6 * Y)])
    assert b.breakeven_value == pytest.approx((compute + 10 * 1000 / (5 * Y)) / 2.0)
    stored = b.full_assumptions()
    assert stored["embodied"]["kgco2e"] == pytest.approx(e.kgco2e)
    assert stored["ranges"]["embodied_kgco2e_range"] == pytest.approx(e.kgco2e_span.pair())
    # without the embodied share, the net is the use phase's alone (as before)
    b.embodied = None
    assert b.net_kgco2e == pytest.approx(1.0 - compute)
    # a run of unknown duration: the embodied share, and so the net, is unknown, not 0
    b.embodied = embodied.embodied_of(None)
    assert b.net_kgco2e is None


def test_benefit_model_declares_both_or_neither(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text("accounting:\n  embodied_kgco2e: {value: 1000, low: 800, high: 1500, "
                    "unit: kgCO2e, source: s, range_source: r}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="go together"):
        benefit.load_benefit_model(path)
    path.write_text(path.read_text() + "  embodied_lifetime_years: {value: 5, low: 4, high: 6, "
                    "unit: year, source: s, range_source: r}\n", encoding="utf-8")
    acc = benefit.load_benefit_model(path).accounting
    assert acc.embodied_kgco2e.span() == Span(800, 1000, 1500)
    assert benefit.load_benefit_model().accounting.embodied_kgco2e is None
