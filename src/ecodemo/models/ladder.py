"""The ladder's choice rule: the cheapest model that does the job.

Among the rungs whose aggregate nMAE is within ``tolerance`` of the most accurate rung -
**relative** tolerance: ``nMAE <= best_nMAE x (1 + tolerance)``, so 2 % means "at most 2 % worse",
whatever the kind's error level - choose the one with the lowest measured compute energy
(training + inference over the backtest, kWh). If an eligible rung has no energy measurement,
energy cannot rank them fairly and wall time (train + predict seconds) is used instead, which
the reason says. Ties go to the more accurate rung.
"""

from __future__ import annotations

from typing import Any

from ecodemo.errors import ModelError


def _energy(c: dict[str, Any]) -> float | None:
    train, pred = c.get("train_energy_kwh"), c.get("predict_energy_kwh")
    if pred is None:
        return None
    if train is None and c.get("train_seconds") is not None:
        return None  # it trained but the measurement failed
    return (train or 0.0) + pred


def _seconds(c: dict[str, Any]) -> float:
    return float(c.get("train_seconds") or 0.0) + float(c.get("predict_seconds") or 0.0)


def choose(candidates: list[dict[str, Any]], tolerance: float = 0.02,
           measure: str = "nMAE") -> tuple[str, str]:
    """(chosen name, reason). ``candidates``: dicts with name, nmae and the cost fields;
    ``measure`` names what ``nmae`` holds in the reason (the backtest passes the nMAE on its
    selection origins, which end before the test)."""
    scored = [c for c in candidates if c.get("nmae") is not None]
    if not scored:
        raise ModelError("no rung of the ladder produced an accuracy figure")
    best = min(scored, key=lambda c: c["nmae"])
    limit = best["nmae"] * (1 + tolerance)
    eligible = [c for c in scored if c["nmae"] <= limit]
    energies = {c["name"]: _energy(c) for c in eligible}
    if all(e is not None for e in energies.values()):
        chosen = min(eligible, key=lambda c: (energies[c["name"]], c["nmae"]))
        cost = f"lowest measured energy {energies[chosen['name']]:.3g} kWh (train + predict)"
    else:
        chosen = min(eligible, key=lambda c: (_seconds(c), c["nmae"]))
        cost = (f"lowest wall time {_seconds(chosen):.3g} s (train + predict); energy was not "
                "measured for every eligible rung")
    others = ", ".join(sorted(c["name"] for c in eligible if c is not chosen)) or "none"
    reason = (f"{chosen['name']}: {measure} {chosen['nmae']:.4f} is within {tolerance:.0%} "
              f"(relative) of the most accurate, {best['name']} ({best['nmae']:.4f}); "
              f"{cost}; other eligible rungs: {others}")
    return chosen["name"], reason
