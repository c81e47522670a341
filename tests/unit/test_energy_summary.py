"""The demo's closing line says the counterfactual, the ranges, the selection and the effect."""

from __future__ import annotations

from ecodemo.energy.summary import closing_line


def _target(effect: str, net: float) -> dict:
    shifted = effect == "shifted"
    return {"kind": "wind" if shifted else "bike",
            "compute": {"total_kwh": 2e-4, "total_kwh_range": [1.2e-4, 2.8e-4],
                        "selection_kwh": 1e-4},
            "benefit": {"counterfactual": {"name": "persistence"}, "energy_effect": effect,
                        "avoided_kwh": None if shifted else 12.0,
                        "avoided_kwh_range": None if shifted else [6.0, 24.0],
                        "shifted_kwh": 1000.0 if shifted else None,
                        "shifted_kwh_range": [500.0, 2000.0] if shifted else None,
                        "avoided_kgco2e": 4.32, "avoided_kgco2e_range": [1.44, 11.52],
                        "breakeven": {"statement": "this service pays back if at least 0.5 % "
                                                   "of the forecast error is acted on"}},
            "net_kgco2e": net, "net_kgco2e_range": [net - 1, net + 1]}


def test_saved_line() -> None:
    line = closing_line(_target("saved", 4.3))
    assert line.startswith("  bike: against persistence: compute 0.200 Wh [0.120 to 0.280], "
                           "of which selection 0.100 Wh; saves 12.0 kWh [6.0 to 24.0]")
    assert "avoids 4.32 kgCO2e [1.44 to 11.52]; net +4.30 kgCO2e [+3.30 to +5.30]" in line
    assert "pays back if at least 0.5 %" in line


def test_shifted_energy_is_not_called_saved_and_tiny_nets_keep_their_digits() -> None:
    line = closing_line(_target("shifted", -2e-6))
    assert "shifts 1,000 kWh [500 to 2,000] of balancing energy (not saved)" in line
    assert "saves" not in line
    assert "net -2e-06 kgCO2e" in line   # not "-0.00"
