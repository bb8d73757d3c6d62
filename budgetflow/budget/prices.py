"""PriceBook: the one place that turns usage into dollars.

Token prices come from LiteLLM's bundled cost map (read offline: LITELLM_LOCAL_MODEL_COST_MAP=True), user overrides
(code or TOML) win over it, and local engines are priced per CPU-second or GPU-second. A model with no price is
refused unless the user gives one or explicitly allows free use; a map entry that says $0 is no price (the map
uses 0 for "not known", not for "free").

Two questions are answered here, and only here:
- `cost(model, usage)`: what one call cost — every part of the usage at its own rate (cached input, cache writes,
  reasoning, audio/image tokens), at the rate tier the provider picks by the size of the prompt.
- `worst_cost(model, input_tokens=, output_tokens=)`: an upper bound of `cost` for every usage within those bounds:
  input bound × the highest input-side rate of any tier the prompt can reach, plus output bound × the highest
  output-side rate. A reservation of `worst_cost` is never exceeded by what the call is billed.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, field_validator

from .errors import UnpricedModel

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


class PriceBook:
    """Prices for every model a run may use.

        prices = PriceBook()                                   # LiteLLM's bundled map only
        prices.set("local/qwen2.5-coder-1.5b", cpu_hour=0.05)  # a local engine, by CPU time
        prices.set("openai/my-finetune", input_per_million=0.5, output_per_million=1.5)
        prices.cost("gpt-4o-mini", input_tokens=1200, output_tokens=300)
        prices.worst_cost("gpt-4o-mini", input_tokens=5000, output_tokens=1024)  # what to reserve
    """

    def __init__(
        self,
        overrides: Mapping[str, ModelPrice | Mapping[str, Any]] | None = None,
        *,
        allow_free: bool = False,
        use_litellm: bool = True,
    ):
        self.allow_free = allow_free
        self.use_litellm = use_litellm
        self._overrides: dict[str, ModelPrice] = {}
        for model, price in (overrides or {}).items():
            self._store(model, price)

    def _store(self, model: str, price: ModelPrice | Mapping[str, Any]) -> ModelPrice:
        if not isinstance(price, ModelPrice):
            price = ModelPrice.from_table(price, source="override")
        if not price.has_positive_rate():
            # a price of 0 is what a missing price looks like; free use is a separate, explicit decision
            raise ValueError(f"the price given for {model!r} has no positive rate: a $0 price is not a price. To run "
                             f"it for free say so explicitly (PriceBook(allow_free=True), allow_free = true in a "
                             f"prices TOML); otherwise give its real rates")
        self._overrides[model] = price
        return price

    def set(self, model: str, **prices: Any) -> ModelPrice:
        """Set a model's prices: input_per_token/_per_million, output_..., cached_input_..., cache_write_...
        (and cache_write_1h_/_12h_), reasoning_..., input_audio_/input_image_/output_audio_/output_image_...,
        tiers=[{above_input_tokens=..., <rates>}], per_request, cpu_second or cpu_hour, gpu_second or gpu_hour."""
        return self._store(model, ModelPrice.from_table(prices, source="override"))

    @classmethod
    def from_toml(cls, path: str | Path, **kwargs) -> "PriceBook":
        """Load overrides from TOML:

            allow_free = false
            [models."local/qwen2.5-coder-1.5b"]
            cpu_hour = 0.05
            [models."openai/my-finetune"]
            input_per_million = 0.5
            output_per_million = 1.5
            [[models."openai/my-finetune".tiers]]   # past 200k prompt tokens the whole request costs more
            above_input_tokens = 200000
            input_per_million = 1.0
            output_per_million = 3.0
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"price file {path} does not exist") from None
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"price file {path} is not valid TOML: {err}") from None
        unknown = set(data) - {"allow_free", "models"}
        if unknown:
            raise ValueError(f"price file {path}: unknown top-level keys {sorted(unknown)}; use allow_free, [models.X]")
        book = cls(allow_free=bool(data.get("allow_free", kwargs.pop("allow_free", False))), **kwargs)
        for model, table in data.get("models", {}).items():
            try:
                book._store(model, table)
            except ValueError as err:
                raise ValueError(f"price file {path}, model {model!r}: {err}") from None
        return book

    def price(self, model: str) -> ModelPrice:
        """The model's prices, or UnpricedModel if nobody knows them and free use was not allowed."""
        if model in self._overrides:
            return self._overrides[model]
        found, zero = (_litellm_price(model) if self.use_litellm else (None, False))
        if found is not None:
            return found
        if self.allow_free:
            return ModelPrice(source="free (allowed)")
        why = ("LiteLLM's cost map lists it at $0 (or without an input or output rate), which means unknown, not free"
               if zero else "LiteLLM's cost map does not list it")
        raise UnpricedModel(
            f"model {model!r} has no price: {why}, and no override was given. "
            f"Give one (PriceBook.set({model!r}, input_per_million=..., output_per_million=...), or cpu_hour=/"
            f"gpu_hour= for a local engine, or a [models.\"{model}\"] table in a prices TOML) or allow free use "
            f"explicitly (allow_free=True)."
        )

    def cost(
        self,
        model: str,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
        cache_write_12h_tokens: int = 0,
        input_audio_tokens: int = 0,
        input_image_tokens: int = 0,
        reasoning_tokens: int = 0,
        output_audio_tokens: int = 0,
        output_image_tokens: int = 0,
        cpu_seconds: float = 0.0,
        gpu_seconds: float = 0.0,
        requests: int = 1,
    ) -> float:
        """USD for one call, at the tier its prompt size selects. As providers report them, `input_tokens` includes
        the cached, cache-written and audio/image ones (parts that do not overlap), `cache_write_tokens` includes the
        1h/12h ones, and `output_tokens` includes the reasoning and audio/image ones; each part is billed at its own
        rate. `requests`: how many calls pay the model's per-request fee (one call: 1)."""
        parts = dict(input_tokens=input_tokens, output_tokens=output_tokens, cached_input_tokens=cached_input_tokens,
                     cache_write_tokens=cache_write_tokens, cache_write_1h_tokens=cache_write_1h_tokens,
                     cache_write_12h_tokens=cache_write_12h_tokens, input_audio_tokens=input_audio_tokens,
                     input_image_tokens=input_image_tokens, reasoning_tokens=reasoning_tokens,
                     output_audio_tokens=output_audio_tokens, output_image_tokens=output_image_tokens,
                     cpu_seconds=cpu_seconds, gpu_seconds=gpu_seconds, requests=requests)
        for name, value in parts.items():
            if value < 0 or math.isnan(value):
                raise ValueError(f"{name} must be ≥ 0, got {value}")
        if cached_input_tokens + cache_write_tokens + input_audio_tokens + input_image_tokens > input_tokens:
            raise ValueError("cached, cache-write and audio/image input tokens are parts of input_tokens: their sum "
                             "must be ≤ input_tokens")
        if cache_write_1h_tokens + cache_write_12h_tokens > cache_write_tokens:
            raise ValueError("cache_write_1h_tokens + cache_write_12h_tokens must be ≤ cache_write_tokens")
        if reasoning_tokens + output_audio_tokens + output_image_tokens > output_tokens:
            raise ValueError("reasoning and audio/image output tokens are parts of output_tokens: their sum must be "
                             "≤ output_tokens")
        p = self.price(model)
        r = p.rates(input_tokens)
        plain_in = input_tokens - cached_input_tokens - cache_write_tokens - input_audio_tokens - input_image_tokens
        plain_write = cache_write_tokens - cache_write_1h_tokens - cache_write_12h_tokens
        plain_out = output_tokens - reasoning_tokens - output_audio_tokens - output_image_tokens
        return (
            plain_in * r.input + cached_input_tokens * r.cached_input + plain_write * r.cache_write
            + cache_write_1h_tokens * r.cache_write_1h + cache_write_12h_tokens * r.cache_write_12h
            + input_audio_tokens * r.input_audio + input_image_tokens * r.input_image
            + plain_out * r.output + reasoning_tokens * r.reasoning + output_audio_tokens * r.output_audio
            + output_image_tokens * r.output_image
            + requests * p.per_request + cpu_seconds * p.cpu_second + gpu_seconds * p.gpu_second
        )

    def worst_cost(
        self,
        model: str,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cpu_seconds: float = 0.0,
        gpu_seconds: float = 0.0,
        requests: int = 1,
    ) -> float:
        """An upper bound of `cost()` over every usage with at most these input and output tokens (however they
        split into cached, cache-written, reasoning, audio... parts): input tokens at the highest input-side rate
        and output tokens at the highest output-side rate of every tier a prompt of that size can reach."""
        for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens),
                            ("cpu_seconds", cpu_seconds), ("gpu_seconds", gpu_seconds), ("requests", requests)):
            if value < 0 or math.isnan(value):
                raise ValueError(f"{name} must be ≥ 0, got {value}")
        p = self.price(model)
        tokens = max(input_tokens * r.highest_input_side + output_tokens * r.highest_output_side
                     for r in p.reachable_rates(input_tokens))
        return tokens + requests * p.per_request + cpu_seconds * p.cpu_second + gpu_seconds * p.gpu_second


# ---------------------------------------------------------------------------------------------------------- LiteLLM

# LiteLLM cost-map key → ModelPrice rate name, for the keys that price a standard (not batch / flex / priority) chat
# request. A key may also carry an `_above_<N>[k]_tokens` suffix: the rate of the tier past N prompt tokens.
_LITELLM_KEYS = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cached_input",
    "cache_creation_input_token_cost": "cache_write",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h",
    "cache_creation_input_token_cost_above_12hr": "cache_write_12h",
    "output_cost_per_reasoning_token": "reasoning",
    "input_cost_per_audio_token": "input_audio",
    "input_cost_per_image_token": "input_image",
    "output_cost_per_audio_token": "output_audio",
    "output_cost_per_image_token": "output_image",
}
_TIER_KEY = re.compile(r"^(?P<base>.+)_above_(?P<n>\d+)(?P<k>k?)_tokens$")
# LiteLLM bills xAI's higher tier from the threshold itself (>=), everyone else's past it (>)
_INCLUSIVE_THRESHOLD_PROVIDERS = {"xai"}

_LITELLM_CACHE: dict[str, tuple[ModelPrice | None, bool]] = {}


def _rate(value: Any) -> float | None:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        return None
    return rate if math.isfinite(rate) and rate >= 0 else None


def _from_litellm_entry(info: Mapping[str, Any]) -> ModelPrice | None:
    """A ModelPrice from one map entry, or None if its input or output rate is missing or $0 (unknown)."""
    base: dict[str, float] = {}
    tiers: dict[int, dict[str, float]] = {}
    inclusive = info.get("litellm_provider") in _INCLUSIVE_THRESHOLD_PROVIDERS
    for key, value in info.items():
        rate = _rate(value)
        if rate is None:
            continue
        if key in _LITELLM_KEYS:
            base[_LITELLM_KEYS[key]] = rate
        elif (m := _TIER_KEY.match(key)) and m["base"] in _LITELLM_KEYS:
            threshold = int(m["n"]) * (1000 if m["k"] else 1) - (1 if inclusive else 0)
            tiers.setdefault(threshold, {})[_LITELLM_KEYS[m["base"]]] = rate
    # `tiered_pricing`: ranges (start, end] of prompt tokens, all-or-nothing; a tier's missing cache rates are its
    # input rate (LiteLLM's rule), its missing output rate the model's own
    for tier in info.get("tiered_pricing") or []:
        try:
            start = int(float(tier["range"][0]))
        except (KeyError, TypeError, ValueError, IndexError):
            continue
        rates = {_LITELLM_KEYS[k]: r for k, v in tier.items() if k in _LITELLM_KEYS and (r := _rate(v)) is not None}
        if "input" in rates:
            rates.setdefault("cached_input", rates["input"])
            rates.setdefault("cache_write", rates["input"])
        if start <= 0:
            base.update(rates)
        else:
            tiers.setdefault(start, {}).update(rates)
    if not base.get("input") or not base.get("output"):
        return None
    return ModelPrice(
        **{f"{k}_per_token": v for k, v in base.items()},
        per_request=_rate(info.get("input_cost_per_request")) or 0.0,
        tiers=tuple(PriceTier(above_input_tokens=n, **{f"{k}_per_token": v for k, v in r.items()})
                    for n, r in tiers.items()),
        source="litellm",
    )


def _litellm_price(model: str) -> tuple[ModelPrice | None, bool]:
    """(price, whether the map lists the model with a $0 or missing rate)."""
    if model in _LITELLM_CACHE:
        return _LITELLM_CACHE[model]
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the map over the network
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    info = litellm.model_cost.get(model)
    if info is None:
        try:
            info = litellm.get_model_info(model)
        except Exception:  # LiteLLM raises several types for "not mapped"
            info = None
    price = _from_litellm_entry(info) if info else None
    result = (price, bool(info) and price is None)
    _LITELLM_CACHE[model] = result
    return result
