"""Data that crosses the model layer's boundary."""

from __future__ import annotations

from typing import Protocol, Union, runtime_checkable

from pydantic import BaseModel, ConfigDict

from ..budget import Account

Message = dict  # {"role": "user", "content": "..."} as in the OpenAI chat format
Prompt = Union[str, list[Message]]


class TokenLogprob(BaseModel):
    model_config = ConfigDict(frozen=True)

    token: str
    logprob: float
    top: dict[str, float] = {}


class Completion(BaseModel):
    text: str
    # stop | length | budget (cut short because the reservation was used up) | error
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None

    @property
    def sum_logprob(self) -> float:
        return sum(t.logprob for t in self.logprobs or [])


class Usage(BaseModel):
    """What one call used, as the engine or provider reported it, and what it cost."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    engine_seconds: float = 0.0  # local engines: busy seconds apportioned to this call
    usd: float = 0.0


class Generation(BaseModel):
    model: str
    completions: list[Completion]
    usage: Usage
    requested_max_tokens: int
    max_tokens: int  # what was sent, after shrinking to what the budget affords
    attempts: int = 1
    notes: list[str] = []

    @property
    def text(self) -> str:
        return self.completions[0].text

    @property
    def shrunk(self) -> bool:
        return self.max_tokens < self.requested_max_tokens


class Scored(BaseModel):
    """Log-probabilities the model gives to a continuation of a prompt."""

    tokens: list[TokenLogprob]
    usage: Usage

    @property
    def total(self) -> float:
        return sum(t.logprob for t in self.tokens)

    @property
    def mean(self) -> float:
        return self.total / len(self.tokens) if self.tokens else 0.0


@runtime_checkable
class LLM(Protocol):
    """A model every call of which is metered on a ledger account."""

    name: str

    def count_tokens(self, prompt: Prompt) -> int: ...

    def generate(
        self,
        prompt: Prompt,
        *,
        account: Account,
        n: int = 1,
        max_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: list[str] | None = None,
        logprobs: int | None = None,
        min_tokens: int = 1,
    ) -> Generation: ...

    def score(self, prompt: str, continuation: str, *, account: Account) -> Scored: ...
