"""Dashboard wording in French (default, for local-authority staff) and English.

Every user-visible string goes through :func:`labels`, so a build in one language is complete.
SQL column aliases that become series names are translated here too: the panel overrides
match on those names.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["fr", "en"]
LANGS: tuple[Lang, ...] = ("fr", "en")

_TEXT: dict[str, tuple[str, str]] = {
    # Territory
    "territory.title": ("ecodemo – Territoire", "ecodemo – Territory"),
    "territory.intro": (
        "Production renouvelable et mobilité du territoire : les mesures récentes, les "
        "prévisions des 48 prochaines heures avec leur marge d'incertitude, et la fiabilité "
        "des prévisions passées. Choisissez un ou plusieurs sites en haut de la page.",
        "Renewable production and mobility across the territory: recent measurements, "
        "forecasts for the next 48 hours with their uncertainty range, and how reliable past "
        "forecasts were. Pick one or more sites at the top of the page.",
    ),
    "site": ("Site", "Site"),
    "sites_total": ("sites, total", "sites, total"),
    "sites_mean": ("sites, moyenne", "sites, mean"),
    "history.desc": (
        "Une courbe par site ; au-delà de {n} sites choisis, une courbe par type et unité : la "
        "somme des sites, ou leur moyenne pour un taux en % (choisissez moins de sites pour les "
        "voir un par un).",
        "One line per site; past {n} chosen sites, one line per kind and unit: the sum over the "
        "sites, or their mean for a rate in % (choose fewer sites to see each one)."),
    "now.title": ("Maintenant : dernière mesure par site", "Now: latest measurement per site"),
    "now.desc": (
        "Dernière valeur reçue pour chaque site choisi (jusqu'à la fin de la période affichée), "
        "avec les 24 heures précédentes en fond.",
        "Latest value received for each selected site (up to the end of the displayed "
        "period), with the previous 24 hours as a sparkline.",
    ),
    "production.title": ("Production renouvelable", "Renewable production"),
    "mobility.title": ("Trafic et mobilité", "Traffic and mobility"),
    "forecast.title": ("Mesuré et prévu (48 h) : ${site}", "Actual and forecast (48 h): ${site}"),
    "forecast.desc": (
        "Trait plein : mesure. Tirets : prévision médiane de la dernière émission. La bande "
        "colorée va de p10 à p90 : la valeur réelle devrait y tomber 8 fois sur 10.",
        "Solid line: measurement. Dashed: median forecast from the latest issue. The shaded "
        "band runs from p10 to p90: the actual value should fall inside 8 times out of 10.",
    ),
    "actual": ("Mesuré", "Actual"),
    "p50": ("Prévision", "Forecast"),
    "p10": ("Bas (p10)", "Low (p10)"),
    "p90": ("Haut (p90)", "High (p90)"),
    "map.title": ("Carte des sites", "Map of the sites"),
    "quality.title": ("Fiabilité des prévisions", "Forecast reliability"),
    "quality.phrase": (
        "Sur les 30 derniers jours, les prévisions « %s » étaient à %s %% près en moyenne",
        "Over the last 30 days, %s forecasts were within %s %% on average",
    ),
    "quality.desc": (
        "Écart moyen entre prévision médiane et mesure, rapporté à la valeur moyenne mesurée "
        "(erreur absolue moyenne normalisée), pour les prévisions réellement émises.",
        "Mean gap between the median forecast and the measurement, relative to the mean "
        "measured value (normalised mean absolute error), for forecasts actually issued.",
    ),
    # Models and pipeline
    "models.title": ("ecodemo – Modèles et chaîne de traitement", "ecodemo – Models and pipeline"),
    "kind": ("Type", "Kind"),
    "models.versions": ("Versions des modèles", "Model versions"),
    "models.choice": ("Choix de l'échelle de modèles et raison", "Model ladder choice and reason"),
    "models.accuracy": ("Précision : backtest et en service (dérive)",
                        "Accuracy: backtest and live (drift)"),
    "models.accuracy.desc": (
        "Erreur absolue moyenne normalisée (nMAE, %) par fin de période évaluée. Une courbe "
        "« live » qui monte au-dessus du backtest signale une dérive.",
        "Normalised mean absolute error (nMAE, %) by end of evaluated period. A live curve "
        "rising above the backtest signals drift.",
    ),
    "models.freshness": ("Fraîcheur, trous et qualité des données par capteur",
                         "Data freshness, gaps and quality flags per sensor"),
    "models.flags": ("Mesures signalées par type de drapeau", "Flagged readings by flag"),
    "models.durations": ("Durée des étapes", "Stage durations"),
    "models.failures": ("Échecs d'étapes", "Stage failures"),
    "annot.training": ("Entraînements", "Training runs"),
    "annot.promotion": ("Promotions de modèle", "Model promotions"),
    # Frugality
    "frugality.title": ("ecodemo – Sobriété", "ecodemo – Frugality"),
    "frugality.intro": (
        "Ce que coûte le calcul (kWh, kgCO2e) et ce que les prévisions permettent d'éviter. "
        "**Méthode de mesure** : sur une machine sans compteurs matériels (RAPL), l'énergie "
        "est **estimée** par CodeCarbon (charge CPU × TDP, RAM constante) ; chaque chiffre "
        "est affiché avec sa méthode. Une mesure en échec reste vide, jamais 0.",
        "What computing costs (kWh, kgCO2e) and what the forecasts help avoid. "
        "**Measurement method**: on a machine without hardware counters (RAPL), energy is "
        "**estimated** by CodeCarbon (CPU load × TDP, constant RAM); every figure is shown "
        "with its method. A failed measurement stays empty, never 0.",
    ),
    "fr.kwh_stage": ("Énergie de calcul par étape (kWh, avec méthode de mesure)",
                     "Compute energy per stage (kWh, with measurement method)"),
    "fr.co2_stage": ("Émissions par étape (kgCO2e) et intensité carbone utilisée",
                     "Emissions per stage (kgCO2e) and carbon intensity used"),
    "fr.intensity": ("intensité (gCO2e/kWh)", "intensity (gCO2e/kWh)"),
    "fr.table": ("Par étape et modèle", "Per stage and model"),
    "fr.methods": ("Méthodes de mesure utilisées", "Measurement methods in use"),
    "fr.total_kwh": ("Énergie de calcul sur la période", "Compute energy over the period"),
    "fr.total_co2": ("Émissions de calcul sur la période", "Compute emissions over the period"),
    "fr.avoided": ("Évité contre dépensé (kgCO2e)", "Avoided against spent (kgCO2e)"),
    "fr.spent": ("dépensé", "spent"),
    "fr.avoided_col": ("évité", "avoided"),
    "fr.ml_added_col": ("évité en plus par l'IA (vs meilleure prévision sans IA)",
                       "added by AI (vs best no-AI forecast)"),
    "fr.balance": ("Bilan net et temps de retour", "Net balance and payback time"),
    "fr.net": ("Bilan net (kgCO2e évités)", "Net balance (kgCO2e avoided)"),
    "fr.acc_energy": ("Précision contre énergie, pour chaque modèle de l'échelle",
                      "Accuracy against energy, for every ladder model"),
    "fr.acc_energy_table": ("Précision et énergie par modèle", "Accuracy and energy per model"),
    "rows.now": ("Maintenant", "Now"),
    "rows.forecast": ("Prévisions", "Forecasts"),
    "rows.history": ("Historique", "History"),
}


def labels(lang: Lang) -> dict[str, str]:
    """All strings in one language."""
    if lang not in LANGS:
        raise ValueError(f"unknown language '{lang}' (expected one of {', '.join(LANGS)})")
    i = LANGS.index(lang)
    return {key: pair[i] for key, pair in _TEXT.items()}
