"""Streaming and async over one metered call path.

Each engine turns a call into a *core*: a generator that has already reserved the call's worst case, dispatches it on
its first step, yields the deltas as they arrive and returns the settled Generation. `generate` drains it; `stream`
hands it to the caller; `agenerate` and `astream` run it on a worker thread. A `Control` lets the caller stop it from
anywhere — an early `close()`, an `aclose()`, a cancelled task: the engine cuts the request (its connection is shut,
its meter stopped, as the hold watchdog does) and settles what it used before the stop returns. So a stopped or
cancelled call never leaves a reservation open, and the metering is the same code on every path.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Generator

from ._types import Delta, Generation

Core = Generator[Delta, None, Generation]

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Async calls run on threads of their own (not the loop's default executor, which has ~cpu+4 threads: a few
    dozen concurrent agent calls would queue behind each other)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=128, thread_name_prefix="budgetflow-llm")
        return _executor


class Control:
    """How another thread stops a call: the engine attaches the call's cut once it is in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cut: Callable[[], None] | None = None
        self.stopped = False

    def attach(self, cut: Callable[[], None]) -> None:
        with self._lock:
            self._cut = cut
            stopped = self.stopped
        if stopped:  # stopped before the request was even sent
            cut()

    def detach(self) -> None:
        with self._lock:
            self._cut = None

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            cut = self._cut
        if cut is not None:
            cut()


def drain(core: Core) -> Generation:
    while True:
        try:
            next(core)
        except StopIteration as done:
            return done.value


class GenerationStream:
    """Deltas of one metered call, as they arrive. `generation` holds the settled result once the stream ends; `close()`
    (or leaving a `with` block) stops the call early: it is cut and charged what it used, and its partial result
    returned."""

    def __init__(self, core: Core, control: Control):
        self._core, self._control = core, control
        self.generation: Generation | None = None

    def __iter__(self) -> "GenerationStream":
        return self

    def __next__(self) -> Delta:
        if self.generation is not None:
            raise StopIteration
        try:
            return next(self._core)
        except StopIteration as done:
            self.generation = done.value
            raise StopIteration from None

    def close(self) -> Generation:
        if self.generation is None:
            self._control.stop()
            self.generation = drain(self._core)  # the engine settles the cut call and returns what it produced
        return self.generation

    def __enter__(self) -> "GenerationStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # a stream dropped mid-way is stopped, not left running on its reservation
        try:
            if self.generation is None:
                self.close()
        except Exception:
            pass


class _End:
    def __init__(self, error: BaseException | None = None):
        self.error = error


async def _settled(future: "asyncio.Future[Any]") -> None:
    """Wait for a worker thread's call to finish settling, even while being cancelled (it ends soon: it was cut)."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            cancelled = True
        except BaseException:
            break
    if cancelled:
        raise asyncio.CancelledError


class AsyncGenerationStream:
    """`async for delta in llm.astream(...)`: the call runs on a worker thread; `aclose()`, or cancelling the task
    that iterates, cuts it and waits until it is settled."""

    def __init__(self, start: Callable[[Control], Core]):
        self._start = start
        self._control = Control()
        self._queue: asyncio.Queue[Delta | _End] | None = None
        self._future: asyncio.Future[None] | None = None
        self.generation: Generation | None = None

    def _begin(self) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Delta | _End] = asyncio.Queue()
        self._queue = queue

        def put(item: Delta | _End) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening, the call still settles
                pass

        def work() -> None:
            try:
                core = self._start(self._control)
                while True:
                    try:
                        put(next(core))
                    except StopIteration as done:
                        self.generation = done.value
                        break
            except BaseException as err:
                put(_End(err))
                return
            put(_End())

        self._future = asyncio.wrap_future(_pool().submit(work))

    def __aiter__(self) -> "AsyncGenerationStream":
        return self

    async def __anext__(self) -> Delta:
        if self._future is None:
            self._begin()
        assert self._queue is not None
        try:
            item = await self._queue.get()
        except asyncio.CancelledError:
            await self.aclose()
            raise
        if isinstance(item, _End):
            self._queue.put_nowait(item)  # every later __anext__ ends too
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item

    async def aclose(self) -> Generation | None:
        if self._future is None:
            return None  # never started: nothing was reserved
        self._control.stop()
        await _settled(self._future)
        return self.generation

    async def __aenter__(self) -> "AsyncGenerationStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


class StreamingMixin:
    """generate / agenerate / stream / astream over an engine's `_start(prompt, account=, control=, streaming=,
    **options) -> Core`."""

    def _start(self, prompt: Any, *, account: Any, control: Control, streaming: bool, **options: Any) -> Core:
        raise NotImplementedError

    def generate(self, prompt: Any, *, account: Any, n: int = 1, max_tokens: int = 256, temperature: float = 0.0,
                 top_p: float = 1.0, stop: list[str] | None = None, logprobs: int | None = None,
                 min_tokens: int = 1, tools: list[dict] | None = None, tool_choice: str | dict | None = None,
                 response_format: dict | None = None, thinking_budget: int | None = None) -> Generation:
        """One metered call (see the LLM protocol): reserved, or refused, before anything is sent; `tools`,
        `tool_choice` and `response_format` are the OpenAI chat fields, counted in the reserved prompt;
        `thinking_budget` caps a reasoning model's reasoning (inside max_tokens)."""
        return drain(self._start(prompt, account=account, control=Control(), streaming=False, n=n,
                                 max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop,
                                 logprobs=logprobs, min_tokens=min_tokens, tools=tools, tool_choice=tool_choice,
                                 response_format=response_format, thinking_budget=thinking_budget))

    def stream(self, prompt: Any, *, account: Any, **options: Any) -> GenerationStream:
        """Like generate(), yielding Deltas as they arrive; reserves (or refuses) before returning."""
        control = Control()
        return GenerationStream(self._start(prompt, account=account, control=control, streaming=True, **options),
                                control)

    def astream(self, prompt: Any, *, account: Any, **options: Any) -> AsyncGenerationStream:
        """`async for delta in llm.astream(...)`; a refusal (BudgetExceeded) is raised by the first step."""
        return AsyncGenerationStream(
            lambda control: self._start(prompt, account=account, control=control, streaming=True, **options))

    async def agenerate(self, prompt: Any, *, account: Any, **options: Any) -> Generation:
        """generate() without blocking the event loop. Cancelled, the call is cut and settled (charged what it used)
        before the cancellation propagates."""
        control = Control()
        future: Future[Generation] = _pool().submit(
            lambda: drain(self._start(prompt, account=account, control=control, streaming=False, **options)))
        wrapped = asyncio.wrap_future(future)
        try:
            return await asyncio.shield(wrapped)
        except asyncio.CancelledError:
            control.stop()
            await _settled(wrapped)
            raise
