"""A verdict card from the figures a balance holds: every present figure in words and human
units, ranges only when given, nothing invented when a figure is missing."""

from __future__ import annotations

from typing import Any

from ecodemo.dashboards.verdict import render_card


def _card(**over: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        "kind": "bike", "sites": [("Vélos bd Diderot O-E", "Paris bike counter: 28 bd")],
        "model": "lgbm_large", "model_is_ml": True, "counterfactual": "seasonal_naive",
        "counterfactual_why": "the best no-AI rung", "counterfactual_declared": False,
        "nmae": 0.24, "nmae_counterfactual": 0.32, "day_ahead_skill": 0.2,
        "weather": "observed_standing_in", "period_h": 168.0, "compute_kwh": 1.5e-4,
        "compute_kwh_range": (9e-5, 2.1e-4), "compute_kgco2e": 8.4e-6, "build_kwh": 1.4e-4,
        "run_kwh": 1e-5, "selection_kwh": 7e-5, "accounting_kwh": 0.0, "avoided_kwh": 102.0,
        "avoided_kgco2e": 32.5, "avoided_kgco2e_range": (1.8, 340.0), "energy_effect": "saved",
        "net_kgco2e": 32.5, "net_kgco2e_range": (1.8, 340.0), "payback_hours": 2e-5,
        "payback_hours_range": (1e-6, 1e-3), "key": "share_acted_on", "key_used": 0.1,
        "key_breakeven": 2.56e-8, "key_breakeven_range": (2.9e-9, 8.3e-7), "ml_share": 1.0,
        "method": "estimated"}
    card.update(over)
    return card


def test_full_card_in_french() -> None:
    html = render_card(_card(), "fr")
    assert 'title="Paris bike counter: 28 bd">Vélos bd Diderot O-E<' in html
    assert "25\u202f% de moins que la répétition de la même heure" in html  # 1 - .24/.32
    assert "la meilleure méthode sans IA" in html and "the best no-AI rung" not in html
    assert "Pour le lendemain" in html and "20\u202f% plus faible" in html
    assert "la météo observée tient lieu de prévision" in html
    assert "540\u00a0J" in html and "(fourchette : 320 à 760\u00a0J)" in html
    assert "ampoule LED de 10\u00a0W allumée 54\u00a0s" in html
    assert "102\u00a0kWh d'énergie économisée" in html
    assert "(fourchette : 1,8 à 340\u00a0kg\u00a0CO₂e)" in html
    assert "+32,5\u00a0kg\u00a0CO₂e évités net" in html and "moins d'une seconde" in html
    assert "1 sur 39\u00a0millions" in html and "(hypothèse retenue : 10\u202f%)" in html
    assert "Évaluation et rapports" not in html   # a zero accounting line says nothing
    assert "bilan positif" in html
    sites = [(f"Vélos {i}", f"compteur {i}") for i in range(5)]
    html = render_card(_card(sites=sites), "fr")
    assert "5 capteurs : " in html and " et 2 autres" in html and "(s)" not in html
    assert " et 1 autre." in render_card(_card(sites=sites[:4]), "fr")


def test_missing_figures_are_said_not_invented() -> None:
    card = _card(compute_kwh=None, compute_kwh_range=None, compute_kgco2e=None,
                 net_kgco2e=None, net_kgco2e_range=None, payback_hours=None,
                 payback_hours_range=None, avoided_kgco2e_range=None, key_breakeven=None,
                 key_breakeven_range=None, day_ahead_skill=None, weather=None,
                 energy_effect=None, nmae_counterfactual=None)
    html = render_card(card, "fr")
    assert "Inconnu : au moins un calcul n'a pas pu être mesuré" in html
    assert "bilan inconnu" in html and "fourchette" not in html and "ampoule" not in html
    assert "non encore évaluée" in html and "Aucune valeur" in html
    assert "Météo" not in html and "lendemain" not in html


def test_no_ai_rung_and_english() -> None:
    html = render_card(_card(model="persistence", model_is_ml=False, ml_share=None,
                             energy_effect="shifted", net_kgco2e=-1.6e-3), "en")
    assert "No AI needed: the chosen method, persistence (last known value)" in html
    assert "shifted to other plants" in html and "net negative" in html
    assert "−1,6".replace(",", ".") in html and "Pour le" not in html


def test_a_few_milligrams_lost_is_negligible_not_negative() -> None:
    """A no-AI method that avoids nothing costs only its own milligrams of computing: the badge
    says negligible with the signed figure; the net row keeps the sign and the range."""
    card = _card(model="climatology", model_is_ml=False, ml_share=None, energy_effect="shifted",
                 avoided_kwh=0.0, avoided_kgco2e=0.0, avoided_kgco2e_range=(0.0, 0.0),
                 net_kgco2e=-4.5e-6, net_kgco2e_range=(-3.2e-5, -2.7e-6), payback_hours=None,
                 key_breakeven=None, key_breakeven_range=None,
                 payback_hours_range=None)
    html = render_card(card, "fr")
    assert 'class="badge small">bilan négligeable : −4,5\u00a0mg\u00a0CO₂e<' in html
    assert "bilan négatif" not in html
    assert "−4,5\u00a0mg\u00a0CO₂e net : le calcul a émis plus qu'il n'a fait éviter" in html
    assert "(fourchette : −32 à −2,7\u00a0mg\u00a0CO₂e)" in html
    assert "0 à 0" not in html                      # an empty avoided range says nothing
    assert "Aucune hypothèse ne change ce bilan : la méthode retenue est sans IA" in html
    assert "1 capteur : " in html and "(s)" not in html
    # one gram or more lost is a real loss, whatever the model
    html = render_card(_card(net_kgco2e=-2e-3, net_kgco2e_range=None), "fr")
    assert 'class="badge neg">bilan négatif<' in html


def test_embodied_share_is_said_apart_with_its_range_in_both_languages() -> None:
    card = _card(embodied_kgco2e=6.5e-4, embodied_kgco2e_range=(3.5e-4, 4.0e-3))
    fr, en = render_card(card, "fr"), render_card(card, "en")
    assert "Fabrication de la machine" in fr and "650\u00a0mg\u00a0CO₂e, compté" in fr
    assert "(fourchette : 0,35 à 4\u00a0g\u00a0CO₂e)" in fr
    assert "Building the machine" in en and "counted in the net. (range: 0.35 to 4" in en
    assert "Fabrication" not in render_card(_card(), "fr")   # not counted: nothing said


def test_default_counterfactual_says_why_in_the_readers_language() -> None:
    fr = render_card(_card(counterfactual_default=True), "fr")
    assert "Sans ce service, l'exploitant pourrait toujours" in fr
    assert "le bilan ne crédite que ce que l'apprentissage automatique ajoute" in fr
    assert "Sans ce service" not in render_card(_card(counterfactual_default=True,
                                                      model="climatology", model_is_ml=False),
                                                "fr")
    assert "the best no-AI rung" not in fr
    en = render_card(_card(counterfactual_default=True), "en")
    assert "Without this service the operator could still" in en
    assert "the best no-AI rung" not in en   # the catalogue's words, not the stored text
    assert "the best no-AI rung" in render_card(_card(), "en")   # a declared reason as written
