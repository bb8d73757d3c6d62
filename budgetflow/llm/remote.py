"""Remote models through LiteLLM, with exact usage: streamed with `include_usage`, cached-input and reasoning tokens
priced at their own rates, and every attempt — each retry, each fallback — reserved and settled as its own ledger
entry.

How an attempt that fails is charged:
- the provider answered with an error (429, 5xx, 4xx): nothing was generated → released (charged 0);
- no reliable answer (timeout, connection dropped, malformed response, stream cut before its usage report): the
  provider may have done the work → charged in full, as reserved.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ..budget import Account, PriceBook
from .metering import CallPlan, LLMError, reserve_call
from .types import Completion, Generation, Prompt, Scored, TokenLogprob, Usage


def _litellm():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the price map
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def _messages(prompt: Prompt) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


class LiteLLMModel:
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
        prompt_margin: float = 1.25,
        prompt_overhead: int = 64,
        extra: dict[str, Any] | None = None,
    ):
        self.name = name
        self.prices = prices
        self.api_base, self.api_key = api_base, api_key
        self.timeout, self.max_retries, self.backoff = timeout, max_retries, backoff
        # a fallback is a model name, or {"model": name, "api_base": ..., "api_key": ...}
        self.fallbacks = [f if isinstance(f, dict) else {"model": f} for f in fallbacks]
        # LiteLLM's counter may not use the provider's tokenizer or chat template (which can add a system
        # prompt): reserve the counted prompt with a margin, so the reservation stays the worst case
        self.prompt_margin, self.prompt_overhead = prompt_margin, prompt_overhead
        self.extra = dict(extra or {})
        for target in self._targets():
            prices.price(target["model"])  # refuse unpriced models up front

    def _targets(self) -> list[dict]:
        primary = {"model": self.name, "api_base": self.api_base, "api_key": self.api_key}
        return [primary] * (1 + self.max_retries) + self.fallbacks

    def count_tokens(self, prompt: Prompt, model: str | None = None) -> int:
        return int(_litellm().token_counter(model=model or self.name, messages=_messages(prompt)))

    def _worst(self, model: str, prompt_tokens: int, n: int):
        def worst(max_tokens: int) -> dict[str, float]:
            return {"usd": self.prices.cost(model, input_tokens=prompt_tokens, output_tokens=n * max_tokens),
                    "input_tokens": prompt_tokens, "output_tokens": n * max_tokens, "calls": 1}
        return worst

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
    ) -> Generation:
        from .vllm_engine import _validate

        _validate(n, max_tokens, temperature, top_p, logprobs)
        attempts, notes, last_error = 0, [], None
        targets = self._targets()
        for i, target in enumerate(targets):
            model = target["model"]
            if i and target is targets[i - 1]:  # a retry of the same endpoint: back off first
                time.sleep(min(self.backoff * 2 ** (i - 1), 8.0))
            attempts += 1
            prompt_tokens = int(self.count_tokens(prompt, model) * self.prompt_margin) + self.prompt_overhead
            plan = reserve_call(account, self._worst(model, prompt_tokens, n), max_tokens, min_tokens)
            try:
                gen = self._attempt(target, prompt, plan, n, temperature, top_p, stop, logprobs, max_tokens)
            except _Retryable as err:
                notes.append(f"attempt {attempts} ({model}): {err}")
                last_error = err
                continue
            gen.attempts, gen.notes = attempts, notes + gen.notes
            return gen
        raise LLMError(f"{self.name}: all {attempts} attempts failed; last: {last_error}. "
                       f"Each attempt is in the ledger.")

    def _attempt(self, target: dict, prompt, plan: CallPlan, n, temperature, top_p, stop, logprobs, asked) -> Generation:
        litellm = _litellm()
        model = target["model"]
        kwargs: dict[str, Any] = dict(
            model=model, messages=_messages(prompt), n=n, max_tokens=plan.max_tokens, temperature=temperature,
            top_p=top_p, stream=True, stream_options={"include_usage": True}, timeout=self.timeout,
            num_retries=0, max_retries=0, **self.extra,
        )
        kwargs.update({k: v for k in ("api_base", "api_key") if (v := target.get(k))})
        if stop:
            kwargs["stop"] = stop
        if logprobs is not None:
            kwargs.update(logprobs=True, top_logprobs=logprobs)
        texts: list[list[str]] = [[] for _ in range(n)]
        lps: list[list[TokenLogprob]] = [[] for _ in range(n)]
        finish: list[str | None] = [None] * n
        usage = None
        try:
            stream = litellm.completion(**kwargs)
        except Exception as err:
            self._settle_failure(plan, model, err)  # raises
        try:
            for chunk in stream:
                if getattr(chunk, "usage", None):
                    usage = chunk.usage
                for choice in chunk.choices or []:
                    i = choice.index or 0
                    texts[i].append(getattr(choice.delta, "content", None) or "")
                    for item in getattr(getattr(choice, "logprobs", None), "content", None) or []:
                        top = {t.token: t.logprob for t in (getattr(item, "top_logprobs", None) or [])}
                        lps[i].append(TokenLogprob(token=item.token, logprob=item.logprob, top=top))
                    if choice.finish_reason:
                        finish[i] = choice.finish_reason
        except Exception as err:  # the provider accepted the request and was producing it: unknown outcome
            plan.reservation.commit(**plan.worst)
            raise _Retryable(f"the stream failed mid-way ({type(err).__name__}): charged as reserved") from err
        if usage is None or not getattr(usage, "completion_tokens", None) and any(f is None for f in finish):
            plan.reservation.commit(**plan.worst)
            raise _Retryable(f"the response ended without its usage report (cut short?): charged as reserved")
        used = self._commit(plan, model, usage)
        completions = [Completion(text="".join(texts[i]), finish_reason=finish[i],
                                  logprobs=lps[i] if logprobs is not None else None) for i in range(n)]
        return Generation(model=model, completions=completions, usage=used, requested_max_tokens=asked,
                          max_tokens=plan.max_tokens, notes=list(plan.notes))

    def _commit(self, plan: CallPlan, model: str, usage) -> Usage:
        inp, out = int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)
        cached = int(getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", None) or 0)
        reasoning = int(getattr(getattr(usage, "completion_tokens_details", None), "reasoning_tokens", None) or 0)
        usd = self.prices.cost(model, input_tokens=inp, output_tokens=out, cached_input_tokens=cached,
                               reasoning_tokens=reasoning)
        plan.reservation.commit(usd=usd, input_tokens=inp, output_tokens=out, calls=1)
        return Usage(input_tokens=inp, output_tokens=out, cached_input_tokens=cached, reasoning_tokens=reasoning,
                     usd=usd)

    def _settle_failure(self, plan: CallPlan, model: str, err: Exception) -> None:
        litellm = _litellm()
        answered = (litellm.RateLimitError, litellm.InternalServerError, litellm.ServiceUnavailableError)
        fatal = (litellm.BadRequestError, litellm.AuthenticationError, litellm.NotFoundError,
                 litellm.PermissionDeniedError, litellm.ContextWindowExceededError)
        status = getattr(err, "status_code", None)
        if isinstance(err, fatal) or (isinstance(status, int) and 400 <= status < 500 and status != 429
                                      and not isinstance(err, litellm.Timeout)):
            plan.reservation.release()
            raise LLMError(f"{model}: the provider refused the request ({type(err).__name__}): {err}") from err
        if isinstance(err, answered):
            plan.reservation.release()
            raise _Retryable(f"provider answered {type(err).__name__} (HTTP {status}); nothing charged") from err
        # timeout, dropped connection, malformed response: the work may have been done and billed
        plan.reservation.commit(**plan.worst)
        raise _Retryable(f"{type(err).__name__} with no reliable answer: charged as reserved") from err

    def score(self, prompt: str, continuation: str, *, account: Account) -> Scored:
        raise NotImplementedError(
            f"{self.name}: chat APIs do not return prompt log-probabilities; score with a vLLM model "
            f"(local/... or vllm/...@url) instead"
        )


class _Retryable(Exception):
    """This attempt failed in a way another attempt may not."""
