"""A vLLM server (managed by us, or someone else's) behind the LLM protocol, every call metered.

Every call (generate, score, the speed measurement) is metered on the engine clock and watched by the hold watchdog,
which stops it the moment its share of engine time reaches what the ledger holds for it — whether or not the engine
is sending anything (shutting the connection makes vLLM abort the request). What a call is charged is what the
meter measured, never forgiven: the hold is a true upper bound because the call is stopped at it.

Pricing is per engine-second on the device the engine runs on (cpu_second or gpu_second), per token, or both; an
engine whose device has no price is refused, so no device runs free by accident.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx

from ..budget import Account, BudgetExceeded, PriceBook, UnpricedModel
from ..budget import to_units
from . import _calibration as calibration
from . import _vllm_call as vllm_call
from ._calibration import Throughput
from ._clock import EngineClock
from ._metering import CallPlan, LLMError, reserve_call
from ._server import VLLMServer
from ._streaming import Control, Core, StreamingMixin
from ._tools import check_tool_choice, check_tools, needs_auto_tools
from ._types import Prompt, Scored, TokenLogprob
from ._watchdog import HoldWatchdog
from ._wire import Connection, sse_events, validate


class VLLMEngine(StreamingMixin):
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
        calibration_cache: Path | None = None,
        auto_tools: bool | None = None,
    ):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.root_url = self.base_url.removesuffix("/v1")
        self.served_model = served_model
        self.prices = prices
        self.price_name = price_name or name
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
        self.device = device
        self._check_priced()  # refuse an unpriced model (or device) now, not mid-run
        self.server = server
        self.safety = safety
        self.clock = EngineClock()
        self.watchdog = HoldWatchdog(self.clock)
        self.throughput = Throughput()
        self._calibration_cache = calibration_cache
        # whether the served model picks tools itself (tool_choice "auto"); None: unknown, the server decides
        self.auto_tools = auto_tools
        # no keep-alive: every call gets a connection of its own, which the watchdog can shut (a loopback connect
        # costs well under a millisecond)
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0),
                                  limits=httpx.Limits(max_connections=256, max_keepalive_connections=0))
        self._calibration_lock = threading.Lock()
        self.max_model_len = max_model_len or self._query_max_model_len()

    # ------------------------------------------------------------------ pricing

    @property
    def time_dimension(self) -> str:
        return "gpu_seconds" if self.device == "gpu" else "cpu_seconds"

    def _check_priced(self) -> None:
        price = self.prices.price(self.price_name)
        per_second = price.gpu_second if self.device == "gpu" else price.cpu_second
        if per_second <= 0 and price.input_per_token <= 0 and price.output_per_token <= 0 \
                and not self.prices.allow_free:
            other = "cpu_hour" if self.device == "gpu" else "gpu_hour"
            raise UnpricedModel(
                f"{self.name} runs on the {self.device.upper()}, but its price ({self.price_name}) has no "
                f"{self.device}_hour{' (only ' + other + ')' if (price.cpu_second or price.gpu_second) else ''}: "
                f"its engine time would cost $0 and no dollar cap would bind. Price it: PriceBook.set("
                f"{self.price_name!r}, {self.device}_hour=...) or `budgetflow run --price-{self.device}-hour USD`.")

    def cost(self, input_tokens: int, output_tokens: int, seconds: float) -> float:
        kwargs = {self.time_dimension: seconds}
        return self.prices.cost(self.price_name, input_tokens=input_tokens, output_tokens=output_tokens, **kwargs)

    def _worst(self, prompt_tokens: int, n: int):
        def worst(max_tokens: int) -> dict[str, float]:
            seconds = self.safety * self.throughput.seconds(prompt_tokens, n, max_tokens)
            usd = self.prices.worst_cost(self.price_name, input_tokens=prompt_tokens, output_tokens=n * max_tokens,
                                         **{self.time_dimension: seconds})
            return {"usd": usd, "input_tokens": prompt_tokens,
                    "output_tokens": n * max_tokens, self.time_dimension: seconds, "calls": 1}
        return worst

    # ------------------------------------------------------------------ server helpers

    def _query_max_model_len(self) -> int:
        try:
            data = self._http.get(f"{self.base_url}/models").json()["data"]
            return int(next(m for m in data if m["id"] == self.served_model)["max_model_len"])
        except Exception:
            return 4096

    def count_tokens(self, prompt: Prompt, tools: list[dict] | None = None) -> int:
        """The prompt's tokens as the server counts them: rendered by its own chat template, tools included (what
        the template shows the model is what it bills; a response_format constrains decoding, it adds no prompt)."""
        body: dict[str, Any] = {"model": self.served_model}
        if isinstance(prompt, str):
            body["prompt"] = prompt
        else:
            body.update(messages=prompt, add_generation_prompt=True)
            if tools:
                body["tools"] = tools
        resp = self._http.post(f"{self.root_url}/tokenize", json=body)
        if resp.status_code != 200:
            raise LLMError(f"{self.name}: cannot count prompt tokens: HTTP {resp.status_code} {resp.text[:300]}")
        return int(resp.json()["count"])

    def _version(self) -> str:
        try:
            return str(self._http.get(f"{self.root_url}/version").json().get("version", "?"))
        except Exception:
            return "?"

    def calibrate(self, account: Account) -> list[str]:
        """Know this engine's speed: from this machine's cache, or measured now and charged to `account` (a few
        small requests under a reservation of their own). Returns notes saying which. Thread-safe; once per engine."""
        with self._calibration_lock:
            if self.throughput.calibrated:
                return []
            path = calibration.cache_path(self, self._version(), self._calibration_cache)
            cached = calibration.load(path)
            if cached is not None:
                self.throughput = cached
                return []
            measured, seconds = calibration.measure(self, account)
            if measured is None:  # not affordable (or cut): work from the defaults, measure again on a later call
                return [f"the engine's speed was not measured ({seconds:.2f} engine-seconds spent on {account.name}):"
                        f" its calls are sized from defaults and extended or cut at their holds"]
            self.throughput = measured
            calibration.store(path, measured)
            return [f"measured the engine's speed first: {seconds:.2f} engine-seconds charged to {account.name}"]

    def timed_request(self, prompt: str, n: int, max_tokens: int, *, hold: float) -> tuple[float, bool]:
        """One streamed completion of exactly `max_tokens` tokens, metered and cut at `hold` engine-seconds.
        Returns (engine-seconds it used, whether it was cut)."""
        body = {"model": self.served_model, "prompt": prompt, "n": n, "max_tokens": max_tokens,
                "ignore_eos": True, "temperature": 1.0, "logprobs": 1, "stream": True}
        key, conn = object(), Connection()
        self.clock.start(key, n)
        watched = self.watchdog.watch(key, hold, margin=min(0.5, hold / 10), extend=lambda s: 0.0,
                                      cut=self._cutter(key, conn))
        try:
            with self._http.stream("POST", f"{self.base_url}/completions", json=body,
                                   extensions={"trace": conn.trace}) as resp:
                resp.raise_for_status()
                for _ in sse_events(resp.iter_lines()):
                    pass
        except (httpx.HTTPError, OSError):
            if not watched.was_cut:
                raise
        finally:
            self.watchdog.unwatch(key)
            seconds = self.clock.finish(key)
        return seconds, watched.was_cut

    def _cutter(self, key: object, conn: Connection):
        """Stop the meter of request `key` and shut its connection (vLLM aborts a request whose client is gone)."""
        def cut() -> None:
            try:
                self.clock.freeze(key)
            except KeyError:
                pass
            conn.shut()
        return cut

    # ------------------------------------------------------------------ calls

    def _start(self, prompt: Prompt, *, account: Account, control: Control, streaming: bool, n: int = 1,
               max_tokens: int = 256, temperature: float = 0.0, top_p: float = 1.0, stop: list[str] | None = None,
               logprobs: int | None = None, min_tokens: int = 1, tools: list[dict] | None = None,
               tool_choice: str | dict | None = None, response_format: dict | None = None,
               thinking_budget: int | None = None) -> Core:
        """Check, count, reserve (or refuse): everything before dispatch; returns the call's stream core.
        A plain-text prompt with tools becomes one user message; named and "required" tool choice and
        response_format are enforced by vLLM's structured outputs, "auto" needs a model that supports it."""
        validate(n, max_tokens, temperature, top_p, logprobs)
        if thinking_budget is not None:  # one call cannot cap a reasoning part the model does not mark
            raise LLMError(f"{self.name}: the local engine serves the model's text as is, with no separate reasoning "
                           f"to cap, so generate(thinking_budget=...) has nothing to bound. Use budget forcing: "
                           f"budgetflow.llm.budget_forced(llm, prompt, thinking_budget={thinking_budget}, ...) caps "
                           f"the reasoning, appends the answer cue and generates the answer under a cap of its own "
                           f"(or --strategy think).")
        check_tools(tools)
        check_tool_choice(tools, tool_choice)
        if self.auto_tools is False and needs_auto_tools(tools, tool_choice):
            raise LLMError(f"{self.name} cannot choose between answering and calling a tool (tool_choice 'auto'): "
                           f"it was not trained to call tools. Force a call (tool_choice='required' or "
                           f"{{'type': 'function', 'function': {{'name': ...}}}}) or use a model that supports it "
                           f"(budgetflow models list)")
        if tools and isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
        prompt_tokens = self.count_tokens(prompt, tools=tools)
        room = self.max_model_len - prompt_tokens
        if room < max(1, min_tokens):
            raise LLMError(f"{self.name}: the prompt has {prompt_tokens} tokens; the model's context is "
                           f"{self.max_model_len}, leaving no room for a completion")
        notes = self.calibrate(account)
        requested = min(max_tokens, room)
        plan = reserve_call(account, self._worst(prompt_tokens, n), requested, min_tokens)
        plan.notes[:0] = notes
        if requested < max_tokens:
            plan.notes.insert(0, f"max_tokens capped at {requested} by the model's context length")
        chat = not isinstance(prompt, str)
        body: dict[str, Any] = {
            "model": self.served_model, "n": n, "max_tokens": plan.max_tokens, "temperature": temperature,
            "top_p": top_p, "stream": True, "stream_options": {"include_usage": True},
            ("messages" if chat else "prompt"): prompt,
        }
        for field, value in (("tools", tools), ("tool_choice", tool_choice), ("response_format", response_format)):
            if value is not None:
                body[field] = value
        if stop:
            body["stop"] = stop
        if min_tokens > 1:  # vLLM's own sampling parameter: no stop string or EOS ends a sequence before it
            body["min_tokens"] = min(min_tokens, plan.max_tokens)
        if logprobs is not None:
            body.update({"logprobs": True, "top_logprobs": logprobs} if chat else {"logprobs": logprobs})
        return vllm_call.run(self, body, chat, plan, prompt_tokens, n, max_tokens, control)

    def _extender(self, plan: CallPlan):
        """The watchdog's way to ask the ledger for more engine time for a call (0 when the budget has none)."""
        def extend(seconds: float) -> float:
            try:
                plan.reservation.extend(usd=self.cost(0, 0, seconds), **{self.time_dimension: seconds})
                return seconds
            except BudgetExceeded:
                return 0.0
        return extend

    def _margin(self, n: int) -> float:
        """How far before its hold a call is cut: two decode steps, and at least 50 ms for the watchdog to act."""
        return max(0.05, 2 * self.throughput.step(n) * self.throughput.drift)

    def _out_of_time(self, account: Account) -> BudgetExceeded:
        """The refusal a call cut at its hold turns into when it has no partial result to return."""
        dim = self.time_dimension
        left = account.headroom_units()[dim]
        need = to_units(dim, self._margin(1), round_up=True)
        return BudgetExceeded(account.name, dim, need, left or 0, left or 0)

    # ------------------------------------------------------------------ score

    def score(self, prompt: str, continuation: str, *, account: Account) -> Scored:
        """The model's log-probabilities of `continuation` after `prompt` (one prefill, no sampling)."""
        prompt_tokens = self.count_tokens(prompt)
        full_tokens = self.count_tokens(prompt + continuation)
        notes = self.calibrate(account)
        plan = reserve_call(account, self._worst(full_tokens, 1), 1, 1)
        plan.notes[:0] = notes
        key, conn = object(), Connection()
        self.clock.start(key, 1)
        watched = self.watchdog.watch(key, plan.worst[self.time_dimension], margin=self._margin(1),
                                      extend=self._extender(plan), cut=self._cutter(key, conn))
        try:
            with self._http.stream("POST", f"{self.base_url}/completions", extensions={"trace": conn.trace}, json={
                    "model": self.served_model, "prompt": prompt + continuation, "max_tokens": 1,
                    "temperature": 0.0, "prompt_logprobs": 0}) as resp:
                body = resp.read()
        except BaseException as err:
            self.watchdog.unwatch(key)
            seconds = self.clock.finish(key)
            vllm_call.charge_unknown(self, plan, full_tokens, seconds, "scoring failed")
            if watched.was_cut:
                raise self._out_of_time(account) from err
            raise
        self.watchdog.unwatch(key)
        seconds = self.clock.finish(key)
        if resp.status_code != 200:
            plan.reservation.release()
            raise LLMError(f"{self.name}: scoring refused (HTTP {resp.status_code}): {body[:300]!r}")
        data = json.loads(body)
        used = vllm_call.commit(self, plan, data["usage"], seconds)
        entries = data["choices"][0].get("prompt_logprobs") or []
        tokens = []
        for entry in entries[prompt_tokens:]:
            if entry:  # {token_id: {"logprob": ..., "decoded_token": ...}}; the first is the actual token
                info = next(iter(entry.values()))
                tokens.append(TokenLogprob(token=info.get("decoded_token") or "", logprob=info["logprob"]))
        return Scored(tokens=tokens, usage=used)

    def close(self) -> None:
        self._http.close()
