"""A model's prices: every rate it has (input, output, cached input, cache writes, reasoning, audio/image tokens,
per request, per engine-second) and the tiers that replace them past a prompt size."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, field_validator

_RATE_NAMES = ("input", "output", "cached_input", "cache_write", "cache_write_1h", "cache_write_12h",
               "reasoning", "input_audio", "input_image", "output_audio", "output_image")


def _check_rate(value: float | None, name: str) -> float | None:
    if value is not None and (math.isnan(value) or math.isinf(value) or value < 0):
        raise ValueError(f"price {name} must be a finite number ≥ 0, got {value}")
    return value


def _per_token_table(table: Mapping[str, Any]) -> dict[str, Any]:
    """`<kind>_per_million` → `<kind>_per_token` for every token rate."""
    values = dict(table)
    for kind in _RATE_NAMES:
        key = f"{kind}_per_million"
        if key in values:
            values[f"{kind}_per_token"] = float(values.pop(key)) * 1e-6
    return values


class PriceTier(BaseModel):
    """Rates that apply to a whole request once its prompt has more than `above_input_tokens` tokens (providers pick
    the tier by prompt size and bill every token of the request at it, e.g. "above 200k tokens"). A rate left None
    keeps the rate of the tier below."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    above_input_tokens: int
    input_per_token: float | None = None
    output_per_token: float | None = None
    cached_input_per_token: float | None = None
    cache_write_per_token: float | None = None
    cache_write_1h_per_token: float | None = None
    cache_write_12h_per_token: float | None = None
    reasoning_per_token: float | None = None
    input_audio_per_token: float | None = None
    input_image_per_token: float | None = None
    output_audio_per_token: float | None = None
    output_image_per_token: float | None = None

    @field_validator("above_input_tokens")
    @classmethod
    def _threshold(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"above_input_tokens must be ≥ 0, got {value}")
        return value

    @field_validator(*(f"{k}_per_token" for k in _RATE_NAMES))
    @classmethod
    def _non_negative(cls, value, info):
        return _check_rate(value, info.field_name)


class ModelPrice(BaseModel):
    """Prices of one model, in USD. Token prices are per token; engine-time prices per second; `per_request` is a
    flat fee per call. A token rate left None is billed like its parent kind (cached input and cache writes like
    input, 1h/12h cache writes like cache writes, reasoning like output, audio/image tokens like input/output)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_token: float = 0.0
    output_per_token: float = 0.0
    cached_input_per_token: float | None = None
    cache_write_per_token: float | None = None
    cache_write_1h_per_token: float | None = None
    cache_write_12h_per_token: float | None = None
    reasoning_per_token: float | None = None
    input_audio_per_token: float | None = None
    input_image_per_token: float | None = None
    output_audio_per_token: float | None = None
    output_image_per_token: float | None = None
    tiers: tuple[PriceTier, ...] = ()
    per_request: float = 0.0
    cpu_second: float = 0.0
    gpu_second: float = 0.0
    source: str = "override"

    @field_validator(*(f"{k}_per_token" for k in _RATE_NAMES), "per_request", "cpu_second", "gpu_second")
    @classmethod
    def _non_negative(cls, value, info):
        return _check_rate(value, info.field_name)

    @field_validator("tiers")
    @classmethod
    def _sorted_tiers(cls, tiers: tuple[PriceTier, ...]) -> tuple[PriceTier, ...]:
        thresholds = [t.above_input_tokens for t in tiers]
        if len(set(thresholds)) != len(thresholds):
            raise ValueError(f"two price tiers share a threshold: {sorted(thresholds)}")
        return tuple(sorted(tiers, key=lambda t: t.above_input_tokens))

    @classmethod
    def from_table(cls, table: Mapping[str, Any], source: str) -> "ModelPrice":
        """Build from a TOML-style table that may use per-million-token and per-hour units (tiers too)."""
        values = _per_token_table(table)
        if "tiers" in values:
            values["tiers"] = tuple(_per_token_table(t) for t in values["tiers"])
        for kind in ("cpu", "gpu"):
            if f"{kind}_hour" in values:
                values[f"{kind}_second"] = float(values.pop(f"{kind}_hour")) / 3600
        return cls(**values, source=source)

    def has_positive_rate(self) -> bool:
        """Whether anything at all costs money under this price."""
        rates = [self.per_request, self.cpu_second, self.gpu_second]
        for holder in (self, *self.tiers):
            rates += [getattr(holder, f"{k}_per_token") or 0.0 for k in _RATE_NAMES]
        return any(r > 0 for r in rates)

    def rates(self, input_tokens: int) -> "Rates":
        """The per-token rates that bill a request whose prompt has `input_tokens` tokens."""
        chosen = {k: getattr(self, f"{k}_per_token") for k in _RATE_NAMES}
        for tier in self.tiers:  # ascending: the highest threshold the prompt exceeds wins, field by field
            if input_tokens > tier.above_input_tokens:
                chosen.update({k: v for k in _RATE_NAMES if (v := getattr(tier, f"{k}_per_token")) is not None})
        return Rates.resolve(chosen)

    def reachable_rates(self, max_input_tokens: int) -> list["Rates"]:
        """The rates of every tier a prompt of at most `max_input_tokens` tokens can land in."""
        points = [0] + [t.above_input_tokens + 1 for t in self.tiers if t.above_input_tokens < max_input_tokens]
        return [self.rates(p) for p in points]


@dataclass(frozen=True)
class Rates:
    """One tier's per-token rates, every fallback resolved."""

    input: float
    output: float
    cached_input: float
    cache_write: float
    cache_write_1h: float
    cache_write_12h: float
    reasoning: float
    input_audio: float
    input_image: float
    output_audio: float
    output_image: float

    @classmethod
    def resolve(cls, r: Mapping[str, float | None]) -> "Rates":
        inp, out = r["input"] or 0.0, r["output"] or 0.0
        write = inp if r["cache_write"] is None else r["cache_write"]

        def pick(value: float | None, default: float) -> float:
            return default if value is None else value

        return cls(input=inp, output=out, cached_input=pick(r["cached_input"], inp), cache_write=write,
                   cache_write_1h=pick(r["cache_write_1h"], write), cache_write_12h=pick(r["cache_write_12h"], write),
                   reasoning=pick(r["reasoning"], out), input_audio=pick(r["input_audio"], inp),
                   input_image=pick(r["input_image"], inp), output_audio=pick(r["output_audio"], out),
                   output_image=pick(r["output_image"], out))

    @property
    def highest_input_side(self) -> float:
        return max(self.input, self.cached_input, self.cache_write, self.cache_write_1h, self.cache_write_12h,
                   self.input_audio, self.input_image)

    @property
    def highest_output_side(self) -> float:
        return max(self.output, self.reasoning, self.output_audio, self.output_image)
