"""Low / central / high figures, and the width of a measured energy by its method.

Every input of a balance is either a measured energy (with a band that depends on how it was
measured) or an assumption of the benefit model (with a low and a high value and a source).
Every figure built from them carries ``[low, high]`` around its central value. The arithmetic
is interval arithmetic: each input appears once in each formula and every formula is monotone
in each input, so the bounds are exact, not a statistical interval (no distribution is
claimed for the assumptions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Span:
    """A central value and its low and high bounds (``low <= central <= high``)."""

    low: float
    central: float
    high: float

    @classmethod
    def point(cls, value: float) -> Span:
        return cls(value, value, value)

    def __add__(self, other: Span) -> Span:
        return Span(self.low + other.low, self.central + other.central,
                    self.high + other.high)

    def __sub__(self, other: Span) -> Span:
        return Span(self.low - other.high, self.central - other.central,
                    self.high - other.low)

    def __mul__(self, other: Span | float) -> Span:
        o = other if isinstance(other, Span) else Span.point(float(other))
        ends = (self.low * o.low, self.low * o.high, self.high * o.low, self.high * o.high)
        return Span(min(ends), self.central * o.central, max(ends))

    __rmul__ = __mul__

    def pair(self) -> list[float]:
        """``[low, high]``, the shape every ``*_range`` field of the outputs has."""
        return [self.low, self.high]


def product(spans: list[Span]) -> Span:
    out = Span.point(1.0)
    for s in spans:
        out = out * s
    return out


def pair(span: Span | None) -> list[float] | None:
    return None if span is None else span.pair()


def as_dict(span: Span | None) -> dict[str, Any] | None:
    if span is None:
        return None
    return {"low": span.low, "central": span.central, "high": span.high}
