"""The report's words for what the pipeline records in English: every practice's evidence and
every note shape of an error reduction has its words in both catalogues, with the same
arguments; a note of a new shape is shown as written (the browser test then fails on it)."""

from __future__ import annotations

import re

import pytest

from ecodemo.dashboards.evidence import balance_method, note_words, practice_evidence
from ecodemo.energy.practices import EVIDENCE_EN

ENGLISH = re.compile(r"\b(?:the|of|with|from|is|are|not|runs|sensor|left out)\b")
ARGS = {"compared": [["bike", ["persistence", "seasonal_naive", "lgbm_large"], "lgbm_large"]],
        "tolerances": [0.02], "with_protocol": 20, "rows": 20, "runs": 172, "unmeasured": 0,
        "methods": ["estimated"], "gpu": 0, "grid": 3, "when": "2026-12-03T11:25+00:00",
        "points": 150, "policies": 1, "stored": 102520, "quarantined": 4}
NOTES = [
    "sensor paris-road-376-occupancy left out: unit % is not convertible to vehicles/h",
    "sensor s1 left out: unit % is not convertible",
    "backtest gives only the kind's aggregate: its MAE reduction is counted once for each of "
    "the 3 sensor(s)",
    "sensor s1: no backtest of the model",
    "sensor s1: the series s2 has no value in the period",
    "no backtest of the model beside 'seasonal_naive': falling back",
    "error reduction interval: 95% percentile interval of a moving-block bootstrap over the 20 "
    "test origins (blocks of 2 day(s), 2000 resamples, seed 0, model and counterfactual "
    "resampled on the same days)",
    "error reduction is a point: sensor s1 has no errors per test origin for both forecasts",
    "error reduction is a point: the errors per origin give 1.2, not the stored 1.3",
    "error reduction interval: 95% percentile interval of a moving-block bootstrap over the 3 "
    "issue days (blocks of 2 day(s), 2000 resamples, seed 0, model and counterfactual "
    "resampled on the same days)",
    "error reduction is a point: the live forecasts were issued on one day, there are no days "
    "to resample",
]


@pytest.mark.parametrize("key", sorted(EVIDENCE_EN))
def test_every_evidence_is_worded_in_both_languages(key: str) -> None:
    args = {k: v for k, v in ARGS.items() if "{" + k + "}" in EVIDENCE_EN[key]}
    p = {"evidence": "x", "evidence_key": key, "evidence_args": args}
    fr, en = practice_evidence(p, "fr"), practice_evidence(p, "en")
    assert "{" not in fr and "{" not in en and fr != en
    assert not ENGLISH.search(fr), fr
    if "stored" in args:   # a count keeps every digit (a figure would be 103 000)
        assert "102\u202f520" in fr or "102 520" in fr or "102\xa0520" in fr, fr


@pytest.mark.parametrize("note", NOTES)
def test_every_note_shape_has_french_words(note: str) -> None:
    fr = note_words(note, "fr")
    assert fr and fr != note and not ENGLISH.search(fr), fr
    assert note_words(note, "en") != note_words(note, "fr")


def test_a_new_note_shape_shows_as_written_and_the_method_reads_in_words() -> None:
    assert note_words("a note of a new shape", "fr") == "a note of a new shape"
    assert note_words("backtest: the error reduction comes from ...", "fr") is None
    a = {"unmeasured_runs": 1,
         "error_reduction_source": {"source": "backtest", "notes": NOTES[:1],
                                    "evaluation_period": ["2021-08-12T00:00:00+00:00",
                                                          "2021-09-09T00:00:00+00:00"]},
         "counterfactual": {"name": "seasonal_naive", "notes": NOTES[:1]},
         "components": {"train": {"n_runs": 2, "n_grid_intensity": 1},
                        "predict": {"n_runs": 3, "n_grid_intensity": 0}}}
    fr = balance_method(a, "fr")
    assert fr.startswith("INCOMPLET") and "12 août 2021" in fr and "même heure" in fr
    assert "5 calculs" in fr and "dont 1 avec" in fr
    assert fr.count("paris-road-376-occupancy") == 1   # a note said twice is shown once
    assert not ENGLISH.search(fr.replace("paris-road-376-occupancy", "")), fr
    assert balance_method(a, "en").startswith("INCOMPLETE")
    a["embodied"] = {"kgco2e": 3.15e-4, "kgco2e_range": [1.7e-4, 1.93e-3], "run_hours": 0.0091,
                     "kgco2e_per_machine_hour": 0.0344, "manufacturing_kgco2e": 1206.5,
                     "lifetime_years": 4.0}
    fr = balance_method(a, "fr")
    assert "Fabrication de la machine : 315\u00a0mg\u00a0CO₂e" in fr and "répartie sur 4 ans" in fr
    assert "1,21\u00a0t\u00a0CO₂e" in fr and not ENGLISH.search(fr.replace(
        "paris-road-376-occupancy", ""))
