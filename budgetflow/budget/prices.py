"""PriceBook: the one place that turns usage into dollars.

Token prices come from LiteLLM's bundled cost map (read offline: LITELLM_LOCAL_MODEL_COST_MAP=True), user overrides
(code or TOML) win over it, and local engines are priced per CPU-second or GPU-second. A model with no price is
refused unless the user gives one or explicitly allows free use.
"""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from .errors import UnpricedModel


class ModelPrice(BaseModel):
    """Prices of one model, in USD. Token prices are per token; engine-time prices per second."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_token: float = 0.0
    output_per_token: float = 0.0
    cached_input_per_token: float | None = None  # None: same as input
    reasoning_per_token: float | None = None  # None: same as output
    cpu_second: float = 0.0
    gpu_second: float = 0.0
    source: str = "override"

    @field_validator("input_per_token", "output_per_token", "cached_input_per_token", "reasoning_per_token",
                     "cpu_second", "gpu_second")
    @classmethod
    def _non_negative(cls, value, info):
        if value is not None and (math.isnan(value) or math.isinf(value) or value < 0):
            raise ValueError(f"price {info.field_name} must be a finite number ≥ 0, got {value}")
        return value

    @classmethod
    def from_table(cls, table: Mapping[str, Any], source: str) -> "ModelPrice":
        """Build from a TOML-style table that may use per-million-token and per-hour units."""
        values = dict(table)
        for unit, factor in (("_per_million", 1e-6),):
            for kind in ("input", "output", "cached_input", "reasoning"):
                key = f"{kind}{unit}"
                if key in values:
                    values[f"{kind}_per_token"] = float(values.pop(key)) * factor
        for kind in ("cpu", "gpu"):
            if f"{kind}_hour" in values:
                values[f"{kind}_second"] = float(values.pop(f"{kind}_hour")) / 3600
        return cls(**values, source=source)


class PriceBook:
    """Prices for every model a run may use.

        prices = PriceBook()                                   # LiteLLM's bundled map only
        prices.set("local/qwen2.5-coder-1.5b", cpu_hour=0.05)  # a local engine, by CPU time
        prices.set("openai/my-finetune", input_per_million=0.5, output_per_million=1.5)
        prices.cost("gpt-4o-mini", input_tokens=1200, output_tokens=300)
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

    def _store(self, model: str, price: ModelPrice | Mapping[str, Any]) -> None:
        if not isinstance(price, ModelPrice):
            price = ModelPrice.from_table(price, source="override")
        self._overrides[model] = price

    def set(self, model: str, **prices: float) -> ModelPrice:
        """Set a model's prices: input_per_token/_per_million, output_..., cached_input_..., reasoning_...,
        cpu_second or cpu_hour, gpu_second or gpu_hour."""
        price = ModelPrice.from_table(prices, source="override")
        self._overrides[model] = price
        return price

    @classmethod
    def from_toml(cls, path: str | Path, **kwargs) -> "PriceBook":
        """Load overrides from TOML:

            allow_free = false
            [models."local/qwen2.5-coder-1.5b"]
            cpu_hour = 0.05
            [models."openai/my-finetune"]
            input_per_million = 0.5
            output_per_million = 1.5
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
        if self.use_litellm:
            found = _litellm_price(model)
            if found is not None:
                return found
        if self.allow_free:
            return ModelPrice(source="free (allowed)")
        raise UnpricedModel(
            f"model {model!r} has no price: LiteLLM's cost map does not list it and no override was given. "
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
        reasoning_tokens: int = 0,
        cpu_seconds: float = 0.0,
        gpu_seconds: float = 0.0,
    ) -> float:
        """USD for one call. `input_tokens` includes cached ones and `output_tokens` includes reasoning ones (as
        providers report them); those parts are billed at their own rates where the model has them."""
        for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens),
                            ("cached_input_tokens", cached_input_tokens), ("reasoning_tokens", reasoning_tokens),
                            ("cpu_seconds", cpu_seconds), ("gpu_seconds", gpu_seconds)):
            if value < 0 or math.isnan(value):
                raise ValueError(f"{name} must be ≥ 0, got {value}")
        if cached_input_tokens > input_tokens or reasoning_tokens > output_tokens:
            raise ValueError("cached_input_tokens ≤ input_tokens and reasoning_tokens ≤ output_tokens are required")
        p = self.price(model)
        cached_rate = p.input_per_token if p.cached_input_per_token is None else p.cached_input_per_token
        reasoning_rate = p.output_per_token if p.reasoning_per_token is None else p.reasoning_per_token
        return (
            (input_tokens - cached_input_tokens) * p.input_per_token
            + cached_input_tokens * cached_rate
            + (output_tokens - reasoning_tokens) * p.output_per_token
            + reasoning_tokens * reasoning_rate
            + cpu_seconds * p.cpu_second
            + gpu_seconds * p.gpu_second
        )


_LITELLM_CACHE: dict[str, ModelPrice | None] = {}


def _litellm_price(model: str) -> ModelPrice | None:
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
    price = None
    if info and (info.get("input_cost_per_token") is not None or info.get("output_cost_per_token") is not None):
        price = ModelPrice(
            input_per_token=info.get("input_cost_per_token") or 0.0,
            output_per_token=info.get("output_cost_per_token") or 0.0,
            cached_input_per_token=info.get("cache_read_input_token_cost"),
            reasoning_per_token=info.get("output_cost_per_reasoning_token"),
            source="litellm",
        )
    _LITELLM_CACHE[model] = price
    return price
