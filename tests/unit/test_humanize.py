"""Figures as a person reads them: unit by magnitude, 2-3 significant figures, French
conventions, a comparison with the conversion shown; the message catalogues are complete."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ecodemo.dashboards import humanize as hz
from ecodemo.dashboards.labels import LANGS, _catalogue, labels
from ecodemo.dashboards.report_tables import quality_summary
from ecodemo.dashboards.verdict import share_phrase

NNBSP = "\u202f"  # the narrow no-break space French uses between thousands


@pytest.mark.parametrize(("kwh", "fr", "en"), [
    (3.45e-7, "1,24\u00a0J", "1.24\u00a0J"),
    (3.63e-5, "131\u00a0J", "131\u00a0J"),
    (0.0021, "2,1\u00a0Wh", "2.1\u00a0Wh"),
    (12.3456, "12,3\u00a0kWh", "12.3\u00a0kWh"),
    (1234.5, "1,23\u00a0MWh", "1.23\u00a0MWh"),
    (10.5e6, "10,5\u00a0GWh", "10.5\u00a0GWh"),
    (2.5e-10, "0,9\u00a0mJ", "0.9\u00a0mJ"),
])
def test_energy_unit_by_magnitude(kwh: float, fr: str, en: str) -> None:
    assert hz.energy(kwh) == fr and hz.energy(kwh, "en") == en


def test_numbers_french_conventions_and_missing_values() -> None:
    assert hz.number(1234.5, sig=5) == f"1{NNBSP}234,5"
    assert hz.number(45847.8) == f"45{NNBSP}800"   # 3 significant figures
    assert hz.number(-12.34) == "−12,3" and hz.number(0.000123) == "0,000123"
    assert hz.number(None) == "–" and hz.energy(None) == "–" and hz.co2(None) == "–"
    assert hz.percent(0.236) == f"24{NNBSP}%" and hz.percent(0.236, "en") == "24%"
    assert hz.co2(3.4e-6) == "3,4\u00a0mg\u00a0CO₂e" and hz.co2(1500) == "1,5\u00a0t\u00a0CO₂e"
    assert hz.energy_range(0.0005, 0.002, "fr") == "0,5 à 2\u00a0Wh"
    # beside a central value, in its unit: '1 000 J (600 à 6 100 J)', not '(0,17 à 1,7 Wh)'
    kwh = 1000 / 3.6e6
    assert hz.energy(kwh) == f"1{NNBSP}000\u00a0J"
    assert hz.energy_range(0.6 * kwh, 6.1 * kwh, "fr", like=kwh) == f"600 à 6{NNBSP}100\u00a0J"
    # French 'million' is plural from 2 ('1 sur 1 millions' read wrong)
    assert hz.count_words(1.04e6) == "1\u00a0million"
    assert hz.count_words(1.9e6) == "1,9\u00a0million"
    assert hz.count_words(2e6) == "2\u00a0millions"
    assert hz.count_words(1e9, "en") == "1\u00a0billion"


def test_durations_and_paris_time() -> None:
    assert hz.duration_h(0.3) == "18\u00a0min" and hz.duration_h(300) == "12\u00a0jours"
    assert hz.duration_h(1e-12) == "moins d'une seconde"
    assert hz.duration_h(45000, "en") == "5,1\u00a0years".replace(",", ".")
    # summer time: UTC+2
    assert hz.when(datetime(2021, 9, 9, 23, 0, tzinfo=UTC)) == "10 sept. 2021, 01:00"
    assert hz.when(datetime(2013, 12, 31, 22, 30, tzinfo=UTC), "en") == "31 Dec 2013, 23:30"


def test_bulb_comparison_shows_its_conversion() -> None:
    # 2.1 Wh = 10 W for 12.6 min
    assert hz.bulb(0.0021) == ("autant qu'une ampoule LED de 10\u00a0W allumée 13\u00a0min "
                               "(10\u00a0W × 13\u00a0min = 2,1\u00a0Wh)")
    assert "10\u00a0W LED bulb" in (hz.bulb(3.6e-5, "en") or "")
    assert hz.bulb(5.0) is None and hz.bulb(None) is None and hz.bulb(0) is None


def test_short_names_and_tiny_shares() -> None:
    assert hz.short_name("Paris bike counter: 28 boulevard Diderot O-E (site 28 boulevard "
                         "Diderot, id 100007049)") == "28 boulevard Diderot O-E"
    long = hz.short_name("RTE eCO2mix Hauts-de-France regional solar production (MW)")
    assert len(long) <= 32 and long.endswith("…")
    assert share_phrase(0.1, "fr") == f"10{NNBSP}%"
    assert share_phrase(3.57e-9, "fr") == "1 sur 280\u00a0millions"
    assert share_phrase(3.57e-9, "en") == "1 in 280\u00a0million"


def test_quality_flags_as_words() -> None:
    flags = {"spike": 5, "flat_line": 0, "kind": "bike", "largest_gaps": [{"after": "x"}]}
    assert quality_summary(flags, 2, "fr") == "5 pics, 2 trous"
    assert quality_summary('{"flat_line": 3}', 0, "en") == "3 flat lines"
    assert quality_summary({}, 0, "fr") == "rien à signaler"


def test_catalogues_have_the_same_ids_and_no_empty_message() -> None:
    fr, en = (_catalogue(lang) for lang in LANGS)
    assert set(fr) == set(en) and len(fr) > 200
    assert not [k for k in fr if not fr[k].strip() or not en[k].strip()]
    assert labels("fr")["verdict.title"] != labels("en")["verdict.title"]
    with pytest.raises(ValueError, match="unknown language 'de'"):
        labels("de")  # type: ignore[arg-type]
