"""The shipped benefit model: valid, every number sourced, and documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecodemo.energy.benefit import avoided, load_benefit_model
from ecodemo.units import KINDS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_kind_has_a_sourced_model() -> None:
    model = load_benefit_model()
    assert set(model.kinds) == set(KINDS)
    for kind, km in model.kinds.items():
        for name, p in {**km.energy_factors, **km.emission_terms}.items():
            assert p.source.strip(), (kind, name)
            # only unit conversions may be flagged as not an assumption
            assert p.assumption or "unit conversion" in p.source, (kind, name)


def test_readme_section_documents_every_parameter() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Energy and carbon accounting", 1)[1].split("\n## ", 1)[0]
    model = load_benefit_model()
    for kind, km in model.kinds.items():
        assert kind in section
        for name in {**km.energy_factors, **km.emission_terms}:
            assert f"`{name}`" in section, (kind, name)
    assert "break-even" in section and "NULL" in section


def test_break_even_helper_is_the_avoided_co2_per_unit_of_key() -> None:
    km = load_benefit_model().kind("transit")
    key = km.energy_factors[km.key].value
    av = avoided(km, 12.0, 10.0)
    assert av.avoided_kgco2e == pytest.approx(av.kgco2e_per_unit_key * key)
    assert av.avoided_kwh == pytest.approx(12.0 * 10.0 * km.kwh_per_error_unit_hour())
    assert av.avoided_kwh > 0
