"""A vLLM server (managed by us, or someone else's) behind the LLM protocol, every call metered.

Calls stream internally, so the engine-time meter can stop a request the moment its share of engine time reaches
what was reserved for it (closing the stream makes vLLM abort the request).
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

import httpx

from ..budget import Account, BudgetExceeded, PriceBook
from .clock import EngineClock
from .metering import CallPlan, LLMError, reserve_call
from .server import VLLMServer
from .types import Completion, Generation, Prompt, Scored, TokenLogprob, Usage


@dataclass
class Throughput:
    """Engine speed measured on the engine itself: seconds per prompt token, per decode step at 1 and 8 sequences.
    `drift` rises (never falls) when real calls turn out slower than predicted."""

    overhead: float = 0.05
    prefill_per_token: float = 0.0005
    step_1: float = 0.02
    step_8: float = 0.04
    drift: float = 1.0
    calibrated: bool = False

    def step(self, n: int) -> float:
        return max(self.step_1, self.step_1 + (self.step_8 - self.step_1) * (n - 1) / 7)

    def seconds(self, prompt_tokens: int, n: int, max_tokens: int) -> float:
        raw = self.overhead + prompt_tokens * self.prefill_per_token + max_tokens * self.step(n)
        return raw * self.drift

    def observe(self, prompt_tokens: int, n: int, steps: int, seconds: float) -> None:
        predicted = self.overhead + prompt_tokens * self.prefill_per_token + steps * self.step(n)
        if predicted > 0 and seconds > predicted * self.drift:
            self.drift = 0.7 * self.drift + 0.3 * (seconds / predicted)


class VLLMEngine:
    """`LLM` over a vLLM OpenAI-compatible server.

    Priced by the PriceBook entry `price_name`: per token, per engine-second (cpu_second / gpu_second), or both.
    Engine seconds are this process's share of the engine's busy time (see clock.py)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        served_model: str,
        *,
        prices: PriceBook,
        price_name: str | None = None,
        device: str = "cpu",
        server: VLLMServer | None = None,
        max_model_len: int | None = None,
        safety: float = 2.0,
        timeout: float = 600.0,
        calibrate: bool = True,
    ):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.root_url = self.base_url.removesuffix("/v1")
        self.served_model = served_model
        self.prices = prices
        self.price_name = price_name or name
        prices.price(self.price_name)  # refuse an unpriced model now, not mid-run
        self.device = device
        self.server = server
        self.safety = safety
        self.clock = EngineClock()
        self.throughput = Throughput()
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0),
                                  limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
        self._calibration_lock = threading.Lock()
        self.max_model_len = max_model_len or self._query_max_model_len()
        if calibrate:  # engine time is metered (and can be capped) even where it is not what is priced
            self.calibrate()

    # ------------------------------------------------------------------ pricing

    @property
    def time_dimension(self) -> str:
        return "gpu_seconds" if self.device == "gpu" else "cpu_seconds"

    def _cost(self, input_tokens: int, output_tokens: int, seconds: float) -> float:
        kwargs = {self.time_dimension: seconds}
        return self.prices.cost(self.price_name, input_tokens=input_tokens, output_tokens=output_tokens, **kwargs)

    def _worst(self, prompt_tokens: int, n: int):
        def worst(max_tokens: int) -> dict[str, float]:
            seconds = self.safety * self.throughput.seconds(prompt_tokens, n, max_tokens)
            return {"usd": self._cost(prompt_tokens, n * max_tokens, seconds), "input_tokens": prompt_tokens,
                    "output_tokens": n * max_tokens, self.time_dimension: seconds, "calls": 1}
        return worst

    # ------------------------------------------------------------------ server helpers

    def _query_max_model_len(self) -> int:
        try:
            data = self._http.get(f"{self.base_url}/models").json()["data"]
            return int(next(m for m in data if m["id"] == self.served_model)["max_model_len"])
        except Exception:
            return 4096

    def count_tokens(self, prompt: Prompt) -> int:
        body: dict[str, Any] = {"model": self.served_model}
        if isinstance(prompt, str):
            body["prompt"] = prompt
        else:
            body.update(messages=prompt, add_generation_prompt=True)
        resp = self._http.post(f"{self.root_url}/tokenize", json=body)
        if resp.status_code != 200:
            raise LLMError(f"{self.name}: cannot count prompt tokens: HTTP {resp.status_code} {resp.text[:300]}")
        return int(resp.json()["count"])

    def calibrate(self) -> Throughput:
        """Measure this engine's speed with three small requests (not charged to any account)."""
        with self._calibration_lock:
            if self.throughput.calibrated:
                return self.throughput

            def timed(prompt: str, n: int, max_tokens: int) -> float:
                # streamed with logprobs, like real calls: per-token chunks cost engine time too
                start = time.monotonic()
                with self._http.stream("POST", f"{self.base_url}/completions", json={
                        "model": self.served_model, "prompt": prompt, "n": n, "max_tokens": max_tokens,
                        "ignore_eos": True, "temperature": 1.0, "logprobs": 1, "stream": True}) as resp:
                    resp.raise_for_status()
                    for _ in _sse(resp.iter_lines()):
                        pass
                return time.monotonic() - start

            timed("Hello", 1, 2)  # warm-up
            one_token = timed("Hello", 1, 1)  # request overhead + a tiny prefill
            short_1 = timed("Hello", 1, 17)
            short_8 = timed("Hello", 8, 17)
            long_prompt = timed("word " * 256, 1, 1)
            tp = self.throughput
            tp.overhead = max(0.005, one_token)
            tp.prefill_per_token = max(1e-6, (long_prompt - one_token) / 256)
            tp.step_1 = max(1e-4, (short_1 - one_token) / 16)
            tp.step_8 = max(tp.step_1, (short_8 - one_token) / 16)
            tp.calibrated = True
            return tp

    # ------------------------------------------------------------------ generate

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
        _validate(n, max_tokens, temperature, top_p, logprobs)
        prompt_tokens = self.count_tokens(prompt)
        room = self.max_model_len - prompt_tokens
        if room < max(1, min_tokens):
            raise LLMError(f"{self.name}: the prompt has {prompt_tokens} tokens; the model's context is "
                           f"{self.max_model_len}, leaving no room for a completion")
        requested = min(max_tokens, room)
        plan = reserve_call(account, self._worst(prompt_tokens, n), requested, min_tokens)
        if requested < max_tokens:
            plan.notes.insert(0, f"max_tokens capped at {requested} by the model's context length")
        chat = not isinstance(prompt, str)
        body: dict[str, Any] = {
            "model": self.served_model, "n": n, "max_tokens": plan.max_tokens, "temperature": temperature,
            "top_p": top_p, "stream": True, "stream_options": {"include_usage": True},
            ("messages" if chat else "prompt"): prompt,
        }
        if stop:
            body["stop"] = stop
        if logprobs is not None:
            body.update({"logprobs": True, "top_logprobs": logprobs} if chat else {"logprobs": logprobs})
        return self._run(body, chat, plan, prompt_tokens, n, max_tokens)

    def _run(self, body: dict, chat: bool, plan: CallPlan, prompt_tokens: int, n: int, asked: int) -> Generation:
        key = object()
        held_seconds = plan.worst[self.time_dimension]
        extension_refused = False
        texts = [[] for _ in range(n)]
        lps: list[list[TokenLogprob]] = [[] for _ in range(n)]
        finish: list[str | None] = [None] * n
        usage = None
        cut_by_budget = False
        sent = False
        self.clock.start(key, n)
        try:
            url = f"{self.base_url}/{'chat/completions' if chat else 'completions'}"
            with self._http.stream("POST", url, json=body) as resp:
                sent = True
                if resp.status_code != 200:
                    detail = resp.read().decode(errors="replace")[:500]
                    raise _Rejected(resp.status_code, detail)
                for chunk in _sse(resp.iter_lines()):
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices", []):
                        i = choice["index"]
                        _absorb(choice, chat, texts[i], lps[i])
                        if choice.get("finish_reason") and finish[i] is None:
                            finish[i] = choice["finish_reason"]
                            self.clock.set_weight(key, sum(f is None for f in finish))
                    if all(f is not None for f in finish):
                        continue  # every sequence is done; only the usage report is still to come
                    # stop before the engine time charged to this call can pass what the ledger holds for it
                    share = self.clock.share(key) + 2 * self.throughput.step(n) * self.throughput.drift
                    if share >= held_seconds and not extension_refused:
                        more = max(held_seconds, 0.5)  # slower than estimated: ask the ledger for more
                        try:
                            plan.reservation.extend(usd=self._cost(0, 0, more), **{self.time_dimension: more})
                            held_seconds += more
                        except BudgetExceeded:
                            extension_refused = True
                    if share >= held_seconds:
                        cut_by_budget = True  # the budget affords no more engine time: abort the request
                        break
        except _Rejected as rejected:
            self.clock.finish(key)
            plan.reservation.release()  # the engine refused it: nothing was generated
            raise LLMError(f"{self.name}: the server refused the request (HTTP {rejected.status}): "
                           f"{rejected.detail}") from None
        except BaseException as err:
            seconds = self.clock.finish(key)
            if not sent and isinstance(err, httpx.ConnectError):
                plan.reservation.release()  # never reached the engine
                raise LLMError(f"{self.name}: cannot reach the engine at {self.base_url}: {err}") from err
            self._charge_unknown(plan, prompt_tokens, seconds, f"failed mid-call: {type(err).__name__}")
            if isinstance(err, (httpx.HTTPError, json.JSONDecodeError)):
                raise LLMError(f"{self.name}: the call failed mid-way ({type(err).__name__}: {err}); "
                               f"charged conservatively") from err
            raise
        seconds = self.clock.finish(key)
        if cut_by_budget:
            for i in range(n):
                finish[i] = finish[i] or "budget"
            plan.notes.append(f"stopped after {seconds:.3f} engine-seconds: its reserved engine time ran out")
        if usage is None:  # the stream ended without its usage report: we cannot know the tokens exactly
            used = self._charge_unknown(plan, prompt_tokens, seconds, "no usage reported")
            if not cut_by_budget:
                raise LLMError(f"{self.name}: the stream ended early without a usage report; charged conservatively")
        else:
            used = self._commit(plan, usage, seconds)
            self.throughput.observe(prompt_tokens, n, max(1, used.output_tokens // n), seconds)
        completions = [Completion(text="".join(texts[i]), finish_reason=finish[i],
                                  # "logprobs": 0 asks for the chosen tokens' logprobs without alternatives
                                  logprobs=lps[i] if "logprobs" in body else None) for i in range(n)]
        return Generation(model=self.name, completions=completions, usage=used, requested_max_tokens=asked,
                          max_tokens=plan.max_tokens, notes=plan.notes)

    def _fit_time(self, plan: CallPlan, seconds: float) -> float:
        """Engine seconds to charge: the measured share, extending the hold if it ran past it. The meter is only
        read between stream chunks, so on a loaded machine a call can overshoot its hold a little before it is
        stopped; if the budget cannot cover that overshoot, it is not charged (and the note says so): the cap is
        the promise, and these seconds are our own apportioned measure, not a bill."""
        held = getattr(plan.reservation.amounts, self.time_dimension)
        if seconds <= held:
            return seconds
        more = seconds - held
        try:
            plan.reservation.extend(usd=self._cost(0, 0, more), **{self.time_dimension: more})
            return seconds
        except BudgetExceeded:
            plan.notes.append(f"{more:.3f} engine-seconds metered past the hold were not charged: "
                              f"the budget had no more")
            return held

    def _commit(self, plan: CallPlan, usage: dict, seconds: float) -> Usage:
        seconds = self._fit_time(plan, seconds)
        inp, out = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        cached = int(((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
        usd = self.prices.cost(self.price_name, input_tokens=inp, output_tokens=out, cached_input_tokens=cached,
                               **{self.time_dimension: seconds})
        plan.reservation.commit(usd=usd, input_tokens=inp, output_tokens=out, calls=1,
                                **{self.time_dimension: seconds})
        return Usage(input_tokens=inp, output_tokens=out, cached_input_tokens=cached, engine_seconds=seconds, usd=usd)

    def _charge_unknown(self, plan: CallPlan, prompt_tokens: int, seconds: float, why: str) -> Usage:
        """Unknown outcome: tokens as reserved (the most it could have produced), engine time as measured
        (or as held, if more was held)."""
        seconds = self._fit_time(plan, seconds)
        held = plan.reservation.amounts.model_dump()
        held[self.time_dimension] = max(seconds, held[self.time_dimension])
        held["usd"] = max(held["usd"], self._cost(prompt_tokens, int(held["output_tokens"]), seconds))
        plan.reservation.commit(**{d: v for d, v in held.items() if v})
        plan.notes.append(f"{why}: charged as reserved")
        return Usage(input_tokens=held["input_tokens"], output_tokens=held["output_tokens"],
                     engine_seconds=held[self.time_dimension], usd=held["usd"])

    # ------------------------------------------------------------------ score

    def score(self, prompt: str, continuation: str, *, account: Account) -> Scored:
        """The model's log-probabilities of `continuation` after `prompt` (one prefill, no sampling)."""
        prompt_tokens = self.count_tokens(prompt)
        full_tokens = self.count_tokens(prompt + continuation)
        plan = reserve_call(account, self._worst(full_tokens, 1), 1, 1)
        key = object()
        self.clock.start(key, 1)
        try:
            resp = self._http.post(f"{self.base_url}/completions", json={
                "model": self.served_model, "prompt": prompt + continuation, "max_tokens": 1,
                "temperature": 0.0, "prompt_logprobs": 0})
        except BaseException:
            self._charge_unknown(plan, full_tokens, self.clock.finish(key), "scoring failed")
            raise
        seconds = self.clock.finish(key)
        if resp.status_code != 200:
            plan.reservation.release()
            raise LLMError(f"{self.name}: scoring refused (HTTP {resp.status_code}): {resp.text[:300]}")
        data = resp.json()
        used = self._commit(plan, data["usage"], seconds)
        entries = data["choices"][0].get("prompt_logprobs") or []
        tokens = []
        for entry in entries[prompt_tokens:]:
            if entry:  # {token_id: {"logprob": ..., "decoded_token": ...}}; the first is the actual token
                info = next(iter(entry.values()))
                tokens.append(TokenLogprob(token=info.get("decoded_token") or "", logprob=info["logprob"]))
        return Scored(tokens=tokens, usage=used)

    def close(self) -> None:
        self._http.close()


class _Rejected(Exception):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail


def _validate(n: int, max_tokens: int, temperature: float, top_p: float, logprobs: int | None) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be ≥ 0, got {temperature!r}")
    if not (0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    if logprobs is not None and not (0 <= logprobs <= 20):
        raise ValueError(f"logprobs (top alternatives per token) must be between 0 and 20, got {logprobs!r}")


def _sse(lines: Iterator[str]) -> Iterator[dict]:
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


def _absorb(choice: dict, chat: bool, text: list[str], lps: list[TokenLogprob]) -> None:
    if chat:
        text.append((choice.get("delta") or {}).get("content") or "")
        for item in ((choice.get("logprobs") or {}).get("content") or []):
            top = {t["token"]: t["logprob"] for t in item.get("top_logprobs") or []}
            lps.append(TokenLogprob(token=item["token"], logprob=item["logprob"], top=top))
    else:
        text.append(choice.get("text") or "")
        lp = choice.get("logprobs") or {}
        tops = lp.get("top_logprobs") or [None] * len(lp.get("tokens") or [])
        for token, logprob, top in zip(lp.get("tokens") or [], lp.get("token_logprobs") or [], tops):
            lps.append(TokenLogprob(token=token, logprob=logprob if logprob is not None else 0.0, top=top or {}))
