"""Thinking-token budgets for reasoning models behind LiteLLM: which request field carries the budget, and the rule
that keeps the reservation a provable upper bound.

The rule: `max_tokens` (sent as `max_completion_tokens`) bounds everything a choice generates, reasoning included,
so a call with `thinking_budget=T` must ask for `max_tokens > T` (T for the reasoning plus at least one answer
token; ask for T + the answer's cap). The reservation stays n × max_completion_tokens at the highest output-side
rate: it never relies on the provider keeping the reasoning within T, which some enforce (Anthropic's
`budget_tokens`, Gemini's `thinkingBudget`) and others only approximate (OpenAI's `reasoning_effort` is a level, not
a count). A budget that cannot afford T + 1 tokens per choice refuses the call before anything is sent.

Which field: LiteLLM's Anthropic-style `thinking={"type": "enabled", "budget_tokens": T}` where LiteLLM accepts it
for the provider (it translates it to Anthropic's `thinking`, Gemini's `thinkingConfig.thinkingBudget`, a vLLM
server's `reasoning_effort`, ...); else `reasoning_effort`, chosen from T by LiteLLM's own thresholds
(DEFAULT_REASONING_EFFORT_{LOW,MEDIUM,HIGH}_THINKING_BUDGET: 1024 / 2048 / 4096 tokens by default): the highest
level whose budget is ≤ T, "low" below 1024 ("minimal" where the model supports it). LiteLLM decides from its model
map whether a model reasons at all (`supports_reasoning`); a self-hosted reasoning model it does not know is declared
with `LiteLLMModel(reasoning="thinking" | "reasoning_effort")`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ReasoningField = Literal["auto", "thinking", "reasoning_effort", "none"]
# request fields that already say how much to reason: given in `extra`, they would fight a thinking_budget
REASONING_FIELDS = ("thinking", "reasoning_effort", "reasoning")

__all__ = ["REASONING_FIELDS", "ReasoningField", "ThinkingRoute", "check_thinking_budget", "effort_for",
           "thinking_route"]


def check_thinking_budget(thinking_budget: int | None, max_tokens: int) -> None:
    """Refuse a thinking budget the output limit cannot hold (see the module's rule)."""
    if thinking_budget is None:
        return
    if not isinstance(thinking_budget, int) or isinstance(thinking_budget, bool) or thinking_budget < 1:
        raise ValueError(f"thinking_budget must be a positive integer, got {thinking_budget!r}")
    if max_tokens <= thinking_budget:
        raise ValueError(
            f"max_tokens={max_tokens} must cover thinking_budget={thinking_budget} plus the answer: max_tokens "
            f"bounds everything a choice generates, reasoning included. Ask for max_tokens = thinking_budget + "
            f"the answer's cap (e.g. {thinking_budget + 256}).")


def effort_for(thinking_budget: int, *, minimal: bool = False) -> str:
    """The reasoning_effort level for a token budget, by LiteLLM's thresholds (the highest level whose budget fits)."""
    from litellm.constants import (
        DEFAULT_REASONING_EFFORT_HIGH_THINKING_BUDGET as HIGH,
        DEFAULT_REASONING_EFFORT_LOW_THINKING_BUDGET as LOW,
        DEFAULT_REASONING_EFFORT_MEDIUM_THINKING_BUDGET as MEDIUM,
    )

    if thinking_budget >= HIGH:
        return "high"
    if thinking_budget >= MEDIUM:
        return "medium"
    if thinking_budget >= LOW or not minimal:
        return "low"
    return "minimal"


@dataclass(frozen=True)
class ThinkingRoute:
    """How a thinking budget reaches one model."""

    field: Literal["thinking", "reasoning_effort"]
    passthrough: bool = False  # LiteLLM does not know the field for this provider: sent as-is in the request body
    minimal: bool = False  # the model accepts reasoning_effort="minimal"

    def fields(self, thinking_budget: int) -> dict[str, Any]:
        """The request keyword arguments for LiteLLM."""
        if self.field == "thinking":
            value: Any = {"type": "enabled", "budget_tokens": thinking_budget}
        else:
            value = effort_for(thinking_budget, minimal=self.minimal)
        return {"extra_body": {self.field: value}} if self.passthrough else {self.field: value}


def thinking_route(litellm: Any, model: str, api_base: str | None, declared: ReasoningField) -> ThinkingRoute | None:
    """The route for `model`, or None when it has no reasoning budget to set (a model that does not reason)."""
    if declared == "none":
        return None
    try:
        name, provider, _, _ = litellm.get_llm_provider(model, api_base=api_base)
        supported = set(litellm.get_supported_openai_params(model=name, custom_llm_provider=provider) or [])
        reasons = bool(litellm.supports_reasoning(model=name, custom_llm_provider=provider))
        info = litellm.get_model_info(model=name, custom_llm_provider=provider) if reasons else {}
    except Exception:
        name, supported, reasons, info = model, set(), False, {}
    minimal = bool((info or {}).get("supports_minimal_reasoning_effort"))
    if declared != "auto":
        return ThinkingRoute(declared, passthrough=declared not in supported, minimal=minimal)
    if not reasons:
        return None
    if "thinking" in supported:
        return ThinkingRoute("thinking")
    if "reasoning_effort" in supported:
        return ThinkingRoute("reasoning_effort", minimal=minimal)
    return None
