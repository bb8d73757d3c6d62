"""Prices from LiteLLM's bundled cost map (read offline: LITELLM_LOCAL_MODEL_COST_MAP=True): every key that prices
a standard chat request, its `_above_N_tokens` tiers and `tiered_pricing` tables. A missing or $0 input or output
rate is no price (the map uses 0 for "not known")."""

from __future__ import annotations

import math
import os
import re
from typing import Any, Mapping

from ._price_rates import ModelPrice, PriceTier

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
