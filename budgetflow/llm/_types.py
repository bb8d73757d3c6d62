"""Data that crosses the model layer's boundary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

from pydantic import BaseModel, ConfigDict

from ..budget import Account

if TYPE_CHECKING:
    from ._streaming import AsyncGenerationStream, GenerationStream

Message = dict  # {"role": "user", "content": "..."} as in the OpenAI chat format
Prompt = Union[str, list[Message]]


class TokenLogprob(BaseModel):
    model_config = ConfigDict(frozen=True)

    token: str
    logprob: float
    top: dict[str, float] = {}


class ToolCall(BaseModel):
    """A function call the model asked for. `arguments` is the parsed JSON (usually an object); when the model's text
    does not parse (cut short, malformed) it is None, `error` says why and `raw_arguments` keeps the text."""

    id: str
    name: str
    arguments: Any = None
    raw_arguments: str = ""
    error: str | None = None


class Completion(BaseModel):
    text: str
    # stop | length | tool_calls | budget (cut at its reservation) | stopped (the caller stopped or cancelled it)
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None
    tool_calls: list[ToolCall] = []

    @property
    def sum_logprob(self) -> float:
        return sum(t.logprob for t in self.logprobs or [])


class ToolCallDelta(BaseModel):
    """A piece of a streamed tool call: the id and name come first, `arguments` is the next piece of its JSON text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class Delta(BaseModel):
    """What one streamed chunk added to choice `choice`."""

    choice: int = 0
    text: str = ""
    tool_calls: list[ToolCallDelta] = []
    finish_reason: str | None = None


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
    def tool_calls(self) -> list[ToolCall]:
        return self.completions[0].tool_calls

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
    """A model every call of which is metered on a ledger account.

    `generate`, `agenerate`, `stream` and `astream` take the same arguments (those of `generate`) and meter alike:
    `tools` (OpenAI function schemas), `tool_choice` ("auto", "required", "none" or {"type": "function",
    "function": {"name": ...}}) and `response_format` ({"type": "json_schema", "json_schema": {...}} or
    {"type": "json_object"}) are counted in the reserved prompt. `thinking_budget` caps a reasoning model's reasoning
    tokens through the provider's own field; `max_tokens` still bounds everything (reasoning + answer), so it must
    exceed the thinking budget. An engine whose models have no reasoning channel refuses it: for those, budget
    forcing (`budget_forced`) caps the reasoning and then forces the answer. A stream stopped early and a cancelled `agenerate`
    are charged what they used, their reservation closed."""

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
        tools: list[dict] | None = None,
        tool_choice: str | dict | None = None,
        response_format: dict | None = None,
        thinking_budget: int | None = None,
    ) -> Generation: ...

    async def agenerate(self, prompt: Prompt, *, account: Account, **options: Any) -> Generation: ...

    def stream(self, prompt: Prompt, *, account: Account, **options: Any) -> "GenerationStream": ...

    def astream(self, prompt: Prompt, *, account: Account, **options: Any) -> "AsyncGenerationStream": ...

    def score(self, prompt: str, continuation: str, *, account: Account) -> Scored: ...
