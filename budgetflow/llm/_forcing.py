"""Budget forcing: a thinking-token budget for a model with no reasoning channel of its own (SmolLM2, Qwen2.5-Coder).

Two metered calls per sample, both on the caller's account:
1. the reasoning, with max_tokens = the thinking budget, stopped at the answer cue ("The answer is");
2. the answer: the prompt, the reasoning, the cue appended (on a new line unless the reasoning ended one), and a
   small separate cap (`answer_max_tokens`), stopped at the end of the line.
So a sample never generates more than thinking_budget + answer_max_tokens tokens. A sample whose reasoning ran out
of budget is *forced*: it was cut mid-thought and made to answer. The prompt is plain text (a completion, not a chat
turn), so the answer call continues the reasoning exactly where it stopped.

When the account caps output tokens, the reasoning is shortened (and, if need be, fewer samples drawn) so that every
sample's answer still fits; the answers of one call run concurrently (the engine batches them).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from ..budget import Account, BudgetExceeded

ANSWER_CUE = "The answer is"

__all__ = ["ANSWER_CUE", "ForcedGeneration", "ForcedSample", "budget_forced"]


class ForcedSample(BaseModel):
    reasoning: str
    thought_tokens: int
    forced: bool  # the thinking budget ran out before the model reached the cue: the cue was appended for it
    cue: str = ""  # what was appended before the answer ("" when no answer call was affordable)
    answer: str = ""  # what the model wrote after the cue
    answer_tokens: int = 0
    answer_probability: float | None = None  # the answer tokens' mean probability (exp of the mean log-probability)

    @property
    def answered(self) -> bool:
        return bool(self.cue)

    @property
    def text(self) -> str:
        return self.reasoning + self.cue + self.answer


class ForcedGeneration(BaseModel):
    samples: list[ForcedSample]
    thinking_budget: int  # what the reasoning was given, after fitting the account
    answer_max_tokens: int
    notes: list[str] = []


def budget_forced(llm: Any, prompt: str, *, account: Account, thinking_budget: int, answer_max_tokens: int = 12,
                  n: int = 1, temperature: float = 0.0, cue: str = ANSWER_CUE) -> ForcedGeneration:
    """Reason under `thinking_budget` tokens (0: answer at once), then force the answer (see the module).
    Raises BudgetExceeded when nothing at all is affordable; an answer call that is not affordable after a
    reasoning leaves its sample unanswered (`answered` False), the rest stand."""
    if not isinstance(prompt, str):
        raise ValueError("budget forcing continues the prompt as plain text: give a string prompt")
    if thinking_budget < 0 or answer_max_tokens < 1 or n < 1:
        raise ValueError(f"need thinking_budget ≥ 0, answer_max_tokens ≥ 1, n ≥ 1; got {thinking_budget}, "
                         f"{answer_max_tokens}, {n}")
    notes: list[str] = []
    n, thinking = _fit(account, n, thinking_budget, answer_max_tokens, notes)
    samples = _reason(llm, prompt, account, n, thinking, temperature, cue)
    refusals: list[BudgetExceeded] = []

    def answer(sample: ForcedSample) -> ForcedSample:
        joint = "" if not sample.reasoning or sample.reasoning.endswith(("\n", " ")) else "\n"
        try:
            gen = llm.generate(prompt + sample.reasoning + joint + cue, account=account, max_tokens=answer_max_tokens,
                               temperature=0.0, stop=["\n"], logprobs=0)
        except BudgetExceeded as err:
            refusals.append(err)
            return sample  # unanswered: the caller reads what it can from the reasoning
        done = gen.completions[0]
        lps = done.logprobs or []
        prob = min(1.0, math.exp(sum(t.logprob for t in lps) / len(lps))) if lps else None
        return sample.model_copy(update={"cue": joint + cue, "answer": done.text,
                                         "answer_tokens": len(lps) or gen.usage.output_tokens,
                                         "answer_probability": prob})

    with ThreadPoolExecutor(max_workers=min(len(samples), 8)) as pool:
        samples = list(pool.map(answer, samples))
    if thinking == 0 and len(refusals) == len(samples):  # nothing was generated at all: a plain refusal
        raise refusals[0]
    if not all(s.answered for s in samples):
        notes.append(f"{sum(not s.answered for s in samples)} of {len(samples)} answers were not affordable")
    return ForcedGeneration(samples=samples, thinking_budget=thinking, answer_max_tokens=answer_max_tokens,
                            notes=notes)


def _fit(account: Account, n: int, thinking: int, answer_max_tokens: int, notes: list[str]) -> tuple[int, int]:
    """Fewer samples and a shorter reasoning when the account's output tokens cannot hold n full samples."""
    left = account.headroom_units().get("output_tokens")
    if left is None or left >= n * (thinking + answer_max_tokens):
        return n, thinking
    fit_n = max(1, min(n, left // (answer_max_tokens + 1)))
    fit_thinking = max(0, min(thinking, left // fit_n - answer_max_tokens))
    notes.append(f"{left} output tokens left: {fit_n} sample(s) of {fit_thinking} thinking tokens "
                 f"(asked {n} of {thinking}), so that each answer still fits")
    return fit_n, fit_thinking


def _reason(llm: Any, prompt: str, account: Account, n: int, thinking: int, temperature: float,
            cue: str) -> list[ForcedSample]:
    if thinking == 0:
        return [ForcedSample(reasoning="", thought_tokens=0, forced=True) for _ in range(n)]
    gen = llm.generate(prompt, account=account, n=n, max_tokens=thinking, temperature=temperature, stop=[cue],
                       logprobs=0)
    per_sample = gen.usage.output_tokens // max(1, len(gen.completions))
    # "length": cut at the thinking budget (or shrunk to what the budget affords); "budget": cut at its hold
    return [ForcedSample(reasoning=c.text, thought_tokens=len(c.logprobs) if c.logprobs is not None else per_sample,
                         forced=c.finish_reason in ("length", "budget")) for c in gen.completions]
