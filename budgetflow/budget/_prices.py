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
import tomllib
from pathlib import Path
from typing import Any, Mapping

from ._errors import UnpricedModel
from ._litellm_map import _litellm_price
from ._price_rates import ModelPrice, PriceTier, Rates

__all__ = ["SANDBOX_CPU", "ModelPrice", "PriceBook", "PriceTier", "Rates"]

# The PriceBook entry that prices sandbox CPU time (test runs, tool runs): `book.set(SANDBOX_CPU, cpu_hour=...)`.
# Unpriced, sandbox runs are still capped (and charged) in CPU-seconds, but cost no dollars.
SANDBOX_CPU = "sandbox"


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

    def has(self, name: str) -> bool:
        """Whether `name` has a price of its own (an override or a positive LiteLLM entry), without refusing."""
        try:
            self.price(name)
            return True
        except UnpricedModel:
            return False

    def per_second(self, name: str, device: str = "cpu") -> float:
        """USD per engine- or sandbox-second on `device` of the entry `name`; 0 where it has none."""
        if not self.has(name):
            return 0.0
        p = self.price(name)
        return p.gpu_second if device == "gpu" else p.cpu_second

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
