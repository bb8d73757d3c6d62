"""Remote models through LiteLLM, with exact usage: streamed with `include_usage`, every part of the usage priced at
its own rate, and every attempt — each retry, each fallback — reserved and settled as its own ledger entry.

What an attempt reserves is a true upper bound of what it can be billed:
- prompt: `prompt_token_bound` over everything the request carries — messages (every field), tools, functions,
  tool_choice, response_format and every other field of `extra` — by UTF-8 bytes plus template and hidden-prompt
  overheads, never LiteLLM's token estimate (it may not be the provider's tokenizer);
- output: n × the token limit, sent as `max_completion_tokens` so a reasoning model's hidden reasoning is inside it
  (a `thinking_budget` goes to the provider's own field and must fit inside that limit: see thinking.py);
- priced by `PriceBook.worst_cost`: the highest input-side rate (input, cache write, any tier the prompt can reach)
  and the highest output-side rate (output, reasoning, any tier).
Features whose billing nothing bounds are refused: provider-side tools (web search, code execution, computer use),
`web_search_options`, predicted outputs, service tiers priced above the standard rates. Assumed, not provable: the
provider bills at most `max_completion_tokens` per choice, and its template / hidden prompts fit prompt_bound's
overheads; where that fails, the ledger records the excess as an overrun.

How an attempt is charged:
- the provider's own usage report, after a finish reason: exactly what it reports (capped by the ledger at the
  reservation, the excess recorded as an overrun);
- released (charged 0) only when the provider provably did no work: HTTP 429; HTTP 400/401/403/404/413/422 (the
  request was refused before any generation); a connection that was never established;
- charged in full, as reserved, in every other case: HTTP 408 and every 5xx (a gateway may answer them after the
  model did the work), timeouts, dropped connections, malformed responses, a stream that ends without the
  provider's own usage report (LiteLLM then makes one up from its estimate) or without a finish reason, anything
  else.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from ..budget import Account, PriceBook
from ._metering import CallPlan, LLMError, reserve_call
from ._prompt_bound import IMAGE_TOKENS, prompt_token_bound
from ._remote_usage import _never_connected, _provider_reported_usage, _status, _usage_parts
from ._streaming import Control, Core, StreamingMixin
from ._thinking import REASONING_FIELDS, ReasoningField, ThinkingRoute, check_thinking_budget, thinking_route
from ._tools import ToolCallAssembler, as_plain, check_tool_choice, check_tools, completion
from ._types import Completion, Delta, Generation, Prompt, Scored, TokenLogprob, Usage

# request fields budgetflow sets itself: giving them in `extra` would bypass the reservation or the metering
_OWN_FIELDS = {"model", "messages", "n", "max_tokens", "max_completion_tokens", "stream", "stream_options",
               "temperature", "top_p", "stop", "logprobs", "top_logprobs", "timeout", "num_retries", "max_retries",
               "api_base", "api_key", "fallbacks"}
# fields whose billing no prompt or output bound covers (per-search fees, rejected prediction tokens)
_UNBOUNDED_FIELDS = {
    "web_search_options": "web search is billed per query, beyond any token bound",
    "prediction": "rejected predicted-output tokens are billed as completion tokens beyond max_completion_tokens",
}
# service tiers priced at most at the standard rates the PriceBook holds (flex is cheaper); others are not priced
_PRICED_SERVICE_TIERS = {None, "auto", "default", "standard", "flex"}
# HTTP statuses that mean the provider refused the request before generating anything
_REFUSED = {400, 401, 403, 404, 413, 422}


def _litellm():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the price map
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def _messages(prompt: Prompt) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


class LiteLLMModel(StreamingMixin):
    def __init__(
        self,
        name: str,
        *,
        prices: PriceBook,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        fallbacks: list[str | dict] | tuple[str | dict, ...] = (),
        image_tokens: int = IMAGE_TOKENS,
        extra: dict[str, Any] | None = None,
        reasoning: ReasoningField = "auto",
    ):
        self.name = name
        # how a thinking_budget reaches the model: "auto" asks LiteLLM's model map; a self-hosted reasoning model it
        # does not know is declared "thinking" or "reasoning_effort"; a fallback dict may carry its own "reasoning"
        self.reasoning = reasoning
        self.prices = prices
        self.api_base, self.api_key = api_base, api_key
        self.timeout, self.max_retries, self.backoff = timeout, max_retries, backoff
        # a fallback is a model name, or {"model": name, "api_base": ..., "api_key": ...}
        self.fallbacks = [f if isinstance(f, dict) else {"model": f} for f in fallbacks]
        self.image_tokens = image_tokens  # what one image part may be billed at (see prompt_bound.IMAGE_TOKENS)
        self.extra = dict(extra or {})
        self._check_extra()
        for target in self._targets():
            prices.price(target["model"])  # refuse unpriced models up front
            self._check_limit_supported(target)

    def _check_extra(self) -> None:
        body = self.extra.get("extra_body") or {}  # merged into the request JSON by LiteLLM: the same rules
        own = sorted(_OWN_FIELDS & (set(self.extra) | set(body)))
        if own:
            raise ValueError(f"extra={own}: budgetflow sets these itself (the token limit and the metering depend on "
                             f"them); pass them as LiteLLMModel / generate() arguments instead")
        for field, why in _UNBOUNDED_FIELDS.items():
            if field in self.extra or field in body:
                raise LLMError(f"extra[{field!r}] cannot be budgeted: {why}")
        if self.extra.get("service_tier") not in _PRICED_SERVICE_TIERS:
            raise LLMError(f"service_tier={self.extra['service_tier']!r} bills above the standard rates budgetflow "
                           f"prices; leave it unset (or 'default'/'flex')")
        check_tools(self.extra.get("tools"))

    def _check_limit_supported(self, target: dict) -> None:
        litellm = _litellm()
        try:
            model, provider, _, _ = litellm.get_llm_provider(target["model"], api_base=target.get("api_base"))
            supported = litellm.get_supported_openai_params(model=model, custom_llm_provider=provider) or []
        except Exception:
            supported = []
        if "max_completion_tokens" not in supported:
            raise LLMError(f"{target['model']}: LiteLLM cannot pass an output-token limit (max_completion_tokens) "
                           f"to this provider, so nothing would bound what a call is billed. Use another provider "
                           f"route for it (e.g. openai/<model> with api_base for an OpenAI-compatible server).")

    def _targets(self) -> list[dict]:
        primary = {"model": self.name, "api_base": self.api_base, "api_key": self.api_key}
        return [primary] * (1 + self.max_retries) + self.fallbacks

    def count_tokens(self, prompt: Prompt, model: str | None = None) -> int:
        """LiteLLM's estimate, for context management only: what is reserved is `prompt_bound`, an upper bound."""
        return int(_litellm().token_counter(model=model or self.name, messages=_messages(prompt)))

    def prompt_bound(self, prompt: Prompt, *, tools: list | None = None, tool_choice: Any = None,
                     response_format: Any = None, stop: list[str] | None = None) -> int:
        """An upper bound on the prompt tokens any provider can bill for this request (see prompt_bound)."""
        return self._bound(prompt, self._request_fields(tools, tool_choice, response_format), stop)

    def _bound(self, prompt: Prompt, fields: dict[str, Any], stop: list[str] | None) -> int:
        other = dict(fields)
        if stop:
            other["stop"] = stop  # part of the request too; counted rather than argued about
        return prompt_token_bound(
            _messages(prompt), tools=other.pop("tools", None), functions=other.pop("functions", None),
            tool_choice=other.pop("tool_choice", None), response_format=other.pop("response_format", None),
            other=other, images=self.image_tokens,
        )

    def _request_fields(self, tools: list | None, tool_choice: Any, response_format: Any) -> dict[str, Any]:
        """`extra` merged with the first-class request fields (each may be given in one place only)."""
        fields = dict(self.extra)
        for key, value in (("tools", tools), ("tool_choice", tool_choice), ("response_format", response_format)):
            if value is None:
                continue
            if key in fields:
                raise ValueError(f"{key} is given both in generate() and in extra=; give it once")
            fields[key] = value
        check_tools(fields.get("tools"))
        return fields

    def _worst(self, model: str, prompt_tokens: int, n: int):
        def worst(max_tokens: int) -> dict[str, float]:
            usd = self.prices.worst_cost(model, input_tokens=prompt_tokens, output_tokens=n * max_tokens)
            return {"usd": usd, "input_tokens": prompt_tokens, "output_tokens": n * max_tokens, "calls": 1}
        return worst

    def _start(self, prompt: Prompt, *, account: Account, control: Control, streaming: bool, n: int = 1,
               max_tokens: int = 256, temperature: float = 0.0, top_p: float = 1.0, stop: list[str] | None = None,
               logprobs: int | None = None, min_tokens: int = 1, tools: list[dict] | None = None,
               tool_choice: str | dict | None = None, response_format: dict | None = None,
               thinking_budget: int | None = None) -> Core:
        """Check, bound and reserve the first attempt (or refuse) before returning the call's stream core.
        `max_tokens` bounds everything generated per choice, reasoning included (sent as max_completion_tokens);
        tools, tool_choice and response_format go to the provider as given; `thinking_budget` goes in the
        provider's own reasoning field and must leave room for the answer: max_tokens > thinking_budget."""
        from ._wire import validate

        validate(n, max_tokens, temperature, top_p, logprobs)
        check_thinking_budget(thinking_budget, max_tokens)
        fields = self._request_fields(tools, tool_choice, response_format)
        check_tool_choice(fields.get("tools"), fields.get("tool_choice"))
        targets = self._targets()
        routes = self._thinking_routes(targets, fields) if thinking_budget is not None else {}
        if thinking_budget is not None:  # never shrink into the reasoning: the answer needs at least one token
            min_tokens = max(min_tokens, thinking_budget + 1)
        # the thinking field is part of the request too: bounded with the rest (every target's, a few tokens each)
        extra_fields = {f"thinking-{i}": r.fields(thinking_budget) for i, r in enumerate(set(routes.values()))}
        prompt_tokens = self._bound(prompt, {**fields, **extra_fields}, stop)  # the same for every target
        first = reserve_call(account, self._worst(targets[0]["model"], prompt_tokens, n), max_tokens, min_tokens)
        call = _Call(prompt, fields, n, temperature, top_p, stop, logprobs, max_tokens, control, streaming,
                     thinking_budget=thinking_budget, routes=routes)
        return self._attempts(call, account, targets, first, prompt_tokens, min_tokens)

    def _thinking_routes(self, targets: list[dict], fields: dict[str, Any]) -> dict[str, ThinkingRoute]:
        """Each target model's thinking field; refuses (before anything is reserved) a model that has none."""
        body = fields.get("extra_body") or {}
        given = [f for f in REASONING_FIELDS if f in fields or f in body]
        if given:
            raise ValueError(f"extra={given} already sets the reasoning; give thinking_budget or those, not both")
        routes: dict[str, ThinkingRoute] = {}
        for target in targets:
            route = thinking_route(_litellm(), target["model"], target.get("api_base"),
                                   target.get("reasoning", self.reasoning))
            if route is None:
                raise LLMError(
                    f"{target['model']}: LiteLLM does not know it as a reasoning model, so it has no thinking budget "
                    f"to set. For a reasoning model LiteLLM does not know, declare LiteLLMModel(reasoning='thinking' "
                    f"or 'reasoning_effort'); for a model that does not reason, use budget forcing "
                    f"(budgetflow.llm.budget_forced, or --strategy think).")
            routes[target["model"]] = route
        return routes

    def _attempts(self, call: "_Call", account: Account, targets: list[dict], first: CallPlan, prompt_tokens: int,
                  min_tokens: int) -> Core:
        attempts, notes, last_error = 0, [], None
        for i, target in enumerate(targets):
            model = target["model"]
            if call.control.stopped:  # stopped between attempts (or before the first): nothing more is sent
                if i == 0:
                    first.reservation.release()
                return Generation(model=model, completions=[Completion(text="", finish_reason="stopped") for _ in range(call.n)],
                                  usage=Usage(), requested_max_tokens=call.asked, max_tokens=first.max_tokens,
                                  attempts=attempts, notes=notes + ["stopped by the caller before a response"])
            if i and target is targets[i - 1]:  # a retry of the same endpoint: back off first
                time.sleep(min(self.backoff * 2 ** (i - 1), 8.0))
            attempts += 1
            plan = first if i == 0 else reserve_call(account, self._worst(model, prompt_tokens, call.n), call.asked,
                                                      min_tokens)
            try:
                gen = yield from self._attempt(target, call, plan)
            except _Retryable as err:
                if call.streaming and call.shown:  # the caller has seen part of this answer: no silent retry
                    raise LLMError(f"{model}: the stream failed after part of the answer was delivered: {err}. "
                                   f"Each attempt is in the ledger.") from err
                notes.append(f"attempt {attempts} ({model}): {err}")
                last_error = err
                continue
            gen.attempts, gen.notes = attempts, notes + gen.notes
            return gen
        raise LLMError(f"{self.name}: all {attempts} attempts failed; last: {last_error}. "
                       f"Each attempt is in the ledger.")

    def _attempt(self, target: dict, call: "_Call", plan: CallPlan) -> Core:
        litellm = _litellm()
        model, n = target["model"], call.n
        kwargs: dict[str, Any] = dict(
            call.fields, model=model, messages=_messages(call.prompt), n=n, max_completion_tokens=plan.max_tokens,
            temperature=call.temperature, top_p=call.top_p, stream=True, stream_options={"include_usage": True},
            timeout=self.timeout, num_retries=0, max_retries=0,
        )
        kwargs.update({k: v for k in ("api_base", "api_key") if (v := target.get(k))})
        if call.thinking_budget is not None and call.routes:
            for key, value in call.routes[model].fields(call.thinking_budget).items():
                kwargs[key] = {**kwargs[key], **value} if key == "extra_body" and key in kwargs else value
        if call.stop:
            kwargs["stop"] = call.stop
        if call.logprobs is not None:
            kwargs.update(logprobs=True, top_logprobs=call.logprobs)
        texts: list[list[str]] = [[] for _ in range(n)]
        lps: list[list[TokenLogprob]] = [[] for _ in range(n)]
        tools = [ToolCallAssembler() for _ in range(n)]
        finish: list[str | None] = [None] * n
        usage = None
        try:
            stream = litellm.completion(**kwargs)
        except Exception as err:
            self._settle_failure(plan, model, err)  # raises
        stopped = False
        try:
            for chunk in stream:
                if call.control.stopped:  # checked per chunk: a remote call stops at its next chunk
                    stopped = True
                    break
                if getattr(chunk, "usage", None):
                    usage = chunk.usage
                for choice in chunk.choices or []:
                    i = choice.index or 0
                    text = getattr(choice.delta, "content", None) or ""
                    texts[i].append(text)
                    pieces = tools[i].add(as_plain(getattr(choice.delta, "tool_calls", None)))
                    for item in getattr(getattr(choice, "logprobs", None), "content", None) or []:
                        top = {t.token: t.logprob for t in (getattr(item, "top_logprobs", None) or [])}
                        lps[i].append(TokenLogprob(token=item.token, logprob=item.logprob, top=top))
                    if choice.finish_reason:
                        finish[i] = choice.finish_reason
                    if text or pieces or choice.finish_reason:
                        call.shown = True
                        yield Delta(choice=i, text=text, tool_calls=pieces, finish_reason=choice.finish_reason)
        except GeneratorExit:  # the core was dropped mid-stream: what the provider bills is unknown
            plan.reservation.commit(**plan.worst)
            raise
        except Exception as err:  # the provider accepted the request and was producing it: unknown outcome
            plan.reservation.commit(**plan.worst)
            raise _Retryable(f"the stream failed mid-way ({type(err).__name__}): charged as reserved") from err
        notes = list(plan.notes)
        if call.thinking_budget is not None and call.routes:
            notes.append(f"thinking budget {call.thinking_budget} sent as {call.routes[model].field}; output bounded "
                         f"by max_completion_tokens={plan.max_tokens}, reasoning included")
        if stopped:
            _close(stream)
            plan.reservation.commit(**plan.worst)
            finish = [f or "stopped" for f in finish]
            notes.append("stopped by the caller: once the stream is closed the provider's usage is unknown, so the "
                         "attempt is charged as reserved")
            used = Usage(input_tokens=int(plan.worst["input_tokens"]), output_tokens=int(plan.worst["output_tokens"]),
                         usd=plan.worst["usd"])
        # (LiteLLM passes on the finish reason of one choice only, so n > 1 cannot ask for each choice's)
        elif usage is None or not _provider_reported_usage(stream) or all(f is None for f in finish):
            plan.reservation.commit(**plan.worst)
            raise _Retryable("the response ended without the provider's usage report or a finish reason (cut "
                             "short?): charged as reserved")
        else:
            used = self._commit(plan, model, usage)
        completions = [completion("".join(texts[i]), finish[i], tools[i], call.fields.get("tools"),
                                  call.fields.get("tool_choice"),
                                  logprobs=lps[i] if call.logprobs is not None else None) for i in range(n)]
        return Generation(model=model, completions=completions, usage=used, requested_max_tokens=call.asked,
                          max_tokens=plan.max_tokens, notes=notes)

    def _commit(self, plan: CallPlan, model: str, usage) -> Usage:
        parts = _usage_parts(usage)
        usd = self.prices.cost(model, **parts)
        plan.reservation.commit(usd=usd, input_tokens=parts["input_tokens"], output_tokens=parts["output_tokens"],
                                calls=1)
        return Usage(input_tokens=parts["input_tokens"], output_tokens=parts["output_tokens"],
                     cached_input_tokens=parts["cached_input_tokens"], reasoning_tokens=parts["reasoning_tokens"],
                     usd=usd)

    def _settle_failure(self, plan: CallPlan, model: str, err: Exception) -> None:
        status = _status(err)
        if _never_connected(err):
            plan.reservation.release()
            raise _Retryable(f"could not connect ({type(err).__name__}); nothing was sent, nothing charged") from err
        if status == 429:
            plan.reservation.release()
            raise _Retryable(f"provider answered {type(err).__name__} (HTTP 429); nothing charged") from err
        if status in _REFUSED:
            plan.reservation.release()
            raise LLMError(f"{model}: the provider refused the request ({type(err).__name__}, HTTP {status}): "
                           f"{err}") from err
        # 408, 5xx, timeout, dropped connection, malformed response: the work may have been done and billed
        plan.reservation.commit(**plan.worst)
        raise _Retryable(f"{type(err).__name__} (HTTP {status}) with no reliable answer: charged as reserved") \
            from err

    def score(self, prompt: str, continuation: str, *, account: Account) -> Scored:
        raise NotImplementedError(
            f"{self.name}: chat APIs do not return prompt log-probabilities; score with a vLLM model "
            f"(local/... or vllm/...@url) instead"
        )


class _Retryable(Exception):
    """This attempt failed in a way another attempt may not."""


@dataclass
class _Call:
    """What every attempt of one call sends, and whether the caller has seen part of an answer yet."""

    prompt: Prompt
    fields: dict[str, Any]
    n: int
    temperature: float
    top_p: float
    stop: list[str] | None
    logprobs: int | None
    asked: int
    control: Control
    streaming: bool
    thinking_budget: int | None = None
    routes: dict[str, ThinkingRoute] | None = None  # target model → its thinking field
    shown: bool = False


def _close(stream: Any) -> None:
    """Close a LiteLLM stream's HTTP response, so the provider can stop generating."""
    for target in (getattr(stream, "completion_stream", None), stream):
        close = getattr(target, "close", None)
        if callable(close):
            try:
                close()
                return
            except Exception:
                pass


