"""Budgets (caps) and amounts, and the fixed-point units the ledger stores them in.

Money and time are stored as integers (nano-dollars, microseconds) so that cap checks in SQL are exact and hashes
of ledger entries are reproducible on every database backend.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Mapping

from pydantic import BaseModel, ConfigDict, field_validator

# Every quantity a budget can cap, with how many stored integer units make one natural unit.
UNITS: dict[str, int] = {
    "usd": 10**9,
    "input_tokens": 1,
    "output_tokens": 1,
    "gpu_seconds": 10**6,
    "cpu_seconds": 10**6,
    "wall_seconds": 10**6,
    "calls": 1,
}
DIMENSIONS: tuple[str, ...] = tuple(UNITS)
INTEGER_DIMENSIONS = frozenset({"input_tokens", "output_tokens", "calls"})


def _check_number(dim: str, value: float, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} for {dim!r} must be a number, got {value!r}")
    if math.isnan(value):
        raise ValueError(f"{what} for {dim!r} is NaN")
    if math.isinf(value):
        raise ValueError(f"{what} for {dim!r} is infinite; leave it unset (None) for no cap")
    if value < 0:
        raise ValueError(f"{what} for {dim!r} is negative ({value}); it must be ≥ 0")
    if dim in INTEGER_DIMENSIONS and float(value) != int(value):
        raise ValueError(f"{what} for {dim!r} must be a whole number, got {value}")


def to_units(dim: str, value: float, *, round_up: bool) -> int:
    """Natural units → stored integer units. Amounts round up (never under-charge), caps round down."""
    _check_number(dim, value, "amount")
    exact = Decimal(repr(value)) * UNITS[dim]
    return int(exact.to_integral_value(rounding=ROUND_CEILING if round_up else ROUND_FLOOR))


def from_units(dim: str, units: int) -> float | int:
    if dim in INTEGER_DIMENSIONS:
        return int(units)
    return units / UNITS[dim]


def amounts_to_units(amounts: Mapping[str, float]) -> dict[str, int]:
    """Validate keyword amounts (as given to reserve/commit) and convert the non-zero ones to units."""
    unknown = set(amounts) - set(UNITS)
    if unknown:
        raise TypeError(f"unknown budget dimension(s) {sorted(unknown)}; known: {', '.join(DIMENSIONS)}")
    out: dict[str, int] = {}
    for dim in DIMENSIONS:
        if dim in amounts and amounts[dim] is not None:
            units = to_units(dim, amounts[dim], round_up=True)
            if units:
                out[dim] = units
    return out


def format_usd(usd: float | None) -> str:
    """The one way budgetflow writes money: to the micro-dollar, no trailing zeros ($0.039612, $5, $1,234.5);
    None is "unlimited"."""
    if usd is None:
        return "unlimited"
    text = f"{abs(usd):,.6f}".rstrip("0").rstrip(".")
    if text in ("0", ""):
        return "$0" if usd == 0 else ("-$0.000001" if usd < 0 else "$0.000001")  # a non-zero amount never reads $0
    return ("-$" if usd < 0 else "$") + text


def format_amount(dim: str, units: int | None, *, with_unit: bool = True) -> str:
    """Human-readable amount: $0.0031, 1,200 output tokens, 12.5 cpu-seconds (bare numbers without the unit)."""
    if units is None:
        return "unlimited"
    value = from_units(dim, units)
    if dim == "usd":
        return format_usd(value)
    number = f"{value:,}" if dim in INTEGER_DIMENSIONS else f"{value:,.6f}".rstrip("0").rstrip(".")
    if not with_unit:
        return number
    return f"{number} {dim.replace('_', ' ') if dim in INTEGER_DIMENSIONS else dim.replace('_', '-')}"


class Budget(BaseModel):
    """Caps on what an account (and everything under it) may spend. None means no cap on that quantity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    gpu_seconds: float | None = None
    cpu_seconds: float | None = None
    wall_seconds: float | None = None
    calls: int | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _valid_cap(cls, value, info):
        if value is not None:
            _check_number(info.field_name, value, "budget cap")
        return value

    def cap_units(self) -> dict[str, int | None]:
        return {
            dim: None if getattr(self, dim) is None else to_units(dim, getattr(self, dim), round_up=False)
            for dim in DIMENSIONS
        }

    @classmethod
    def from_units(cls, caps: Mapping[str, int | None]) -> "Budget":
        return cls(**{dim: None if caps.get(dim) is None else from_units(dim, caps[dim]) for dim in DIMENSIONS})

    @classmethod
    def parse(cls, text: str) -> "Budget":
        """Parse the CLI form: 'usd=0.50,calls=100,output_tokens=20000'."""
        caps: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"budget item {part!r} must look like name=value, e.g. usd=0.50")
            try:
                caps[key.strip()] = float(value)
            except ValueError:
                raise ValueError(f"budget item {part!r}: {value!r} is not a number") from None
        return cls(**caps)

    def describe(self) -> str:
        caps = self.cap_units()
        parts = [f"{format_amount(d, u)}" for d, u in caps.items() if u is not None]
        return ", ".join(parts) if parts else "no caps"


class Amounts(BaseModel):
    """Quantities spent or held, in natural units."""

    model_config = ConfigDict(frozen=True)

    usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    gpu_seconds: float = 0.0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    calls: int = 0

    @classmethod
    def from_units(cls, units: Mapping[str, int]) -> "Amounts":
        return cls(**{dim: from_units(dim, units.get(dim, 0)) for dim in DIMENSIONS})
