"""One metered request to a vLLM server, as a stream of deltas: dispatched on its first step, watched against its
hold, stoppable by its caller, and settled on every path.

How it is charged:
- finished (the server's usage report arrived): exactly what the server reported, and the engine time measured;
- cut at its hold (the watchdog) or stopped by the caller (an early close, a cancelled task): the engine time measured
  up to the cut (the meter stops at the cut, the connection is shut and vLLM aborts the request), so the dollars of an
  engine priced by time are exactly what it used; tokens as reserved, because how many the engine produced between
  its last streamed token and the abort is unknown — an upper bound, never an undercount;
- refused by the server: released; never reached it: released; anything else mid-way: as reserved (tokens), engine
  time as measured.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx

from ._metering import CallPlan, LLMError
from ._streaming import Control, Core
from ._tools import ToolCallAssembler, completion
from ._types import Completion, Delta, Generation, TokenLogprob, Usage
from ._wire import Connection, Rejected, absorb, sse_events

if TYPE_CHECKING:
    from ._vllm_engine import VLLMEngine


def run(engine: "VLLMEngine", body: dict, chat: bool, plan: CallPlan, prompt_tokens: int, n: int, asked: int,
        control: Control) -> Core:
    if control.stopped:  # stopped before it was sent: nothing happened
        plan.reservation.release()
        return _result(engine, plan, asked, [Completion(text="", finish_reason="stopped") for _ in range(n)],
                       Usage(), ["stopped before it was sent: nothing charged"])
    key, conn = object(), Connection()
    texts: list[list[str]] = [[] for _ in range(n)]
    lps: list[list[TokenLogprob]] = [[] for _ in range(n)]
    tools = [ToolCallAssembler() for _ in range(n)]
    finish: list[str | None] = [None] * n
    usage = None
    sent = False
    engine.clock.start(key, n)
    cut = engine._cutter(key, conn)
    watched = engine.watchdog.watch(key, plan.worst[engine.time_dimension], margin=engine._margin(n),
                                    extend=engine._extender(plan), cut=cut)
    control.attach(cut)
    try:
        url = f"{engine.base_url}/{'chat/completions' if chat else 'completions'}"
        with engine._http.stream("POST", url, json=body, extensions={"trace": conn.trace}) as resp:
            sent = True
            if resp.status_code != 200:
                raise Rejected(resp.status_code, resp.read().decode(errors="replace")[:500])
            try:
                for chunk in sse_events(resp.iter_lines()):
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices", []):
                        i = choice["index"]
                        before = len(texts[i])
                        absorb(choice, chat, texts[i], lps[i])
                        pieces = tools[i].add((choice.get("delta") or {}).get("tool_calls")) if chat else []
                        done = choice.get("finish_reason")
                        if done and finish[i] is None:
                            finish[i] = done
                            engine.clock.set_weight(key, sum(f is None for f in finish))
                        text = "".join(texts[i][before:])
                        if text or pieces or done:
                            yield Delta(choice=i, text=text, tool_calls=pieces, finish_reason=done)
            except (httpx.HTTPError, OSError, json.JSONDecodeError):
                if not (watched.was_cut or control.stopped):
                    raise
    except Rejected as rejected:
        _end(engine, key, control)
        plan.reservation.release()  # the engine refused it: nothing was generated
        raise LLMError(f"{engine.name}: the server refused the request (HTTP {rejected.status}): "
                       f"{rejected.detail}") from None
    except BaseException as err:
        if isinstance(err, GeneratorExit):  # the core itself was dropped mid-stream: cut it like a stop
            cut()
        seconds = _end(engine, key, control)
        stopped = watched.was_cut or control.stopped
        if stopped and isinstance(err, (httpx.HTTPError, OSError, GeneratorExit)):
            why = "its reserved engine time ran out" if watched.was_cut else "stopped by the caller"
            used = charge_unknown(engine, plan, prompt_tokens, seconds, f"{why} before the response began")
            if isinstance(err, GeneratorExit):
                raise
            return _result(engine, plan, asked, [Completion(text="", finish_reason=_reason(watched.was_cut))
                                                 for _ in range(n)], used, [])
        if not sent and isinstance(err, httpx.ConnectError):
            plan.reservation.release()  # never reached the engine
            raise LLMError(f"{engine.name}: cannot reach the engine at {engine.base_url}: {err}") from err
        charge_unknown(engine, plan, prompt_tokens, seconds, f"failed mid-call: {type(err).__name__}")
        if isinstance(err, (httpx.HTTPError, json.JSONDecodeError)):
            raise LLMError(f"{engine.name}: the call failed mid-way ({type(err).__name__}: {err}); "
                           f"charged conservatively") from err
        raise
    seconds = _end(engine, key, control)
    stopped = watched.was_cut or control.stopped
    if stopped and usage is None:
        for i in range(n):
            finish[i] = finish[i] or _reason(watched.was_cut)
        if watched.was_cut:
            plan.notes.append(f"stopped after {seconds:.3f} engine-seconds: its reserved engine time ran out")
        else:
            plan.notes.append(f"stopped by the caller after {seconds:.3f} engine-seconds")
    if usage is None:  # cut, or the stream ended without its usage report: tokens as reserved
        used = charge_unknown(engine, plan, prompt_tokens, seconds, "no usage reported")
        if not stopped:
            raise LLMError(f"{engine.name}: the stream ended early without a usage report; charged conservatively")
    else:
        used = commit(engine, plan, usage, seconds)
        engine.throughput.observe(prompt_tokens, n, max(1, used.output_tokens // n), seconds)
    completions = [completion("".join(texts[i]), finish[i], tools[i], body.get("tools"), body.get("tool_choice"),
                              # "logprobs": 0 asks for the chosen tokens' logprobs without alternatives
                              logprobs=lps[i] if "logprobs" in body else None) for i in range(n)]
    return _result(engine, plan, asked, completions, used, [])


def _reason(was_cut: bool) -> str:
    return "budget" if was_cut else "stopped"


def _end(engine: "VLLMEngine", key: object, control: Control) -> float:
    control.detach()
    engine.watchdog.unwatch(key)
    return engine.clock.finish(key)


def _result(engine: "VLLMEngine", plan: CallPlan, asked: int, completions: list[Completion], used: Usage,
            notes: list[str]) -> Generation:
    return Generation(model=engine.name, completions=completions, usage=used, requested_max_tokens=asked,
                      max_tokens=plan.max_tokens, notes=plan.notes + notes)


def commit(engine: "VLLMEngine", plan: CallPlan, usage: dict[str, Any], seconds: float) -> Usage:
    inp, out = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    cached = int(((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
    dim = engine.time_dimension
    usd = engine.prices.cost(engine.price_name, input_tokens=inp, output_tokens=out, cached_input_tokens=cached,
                             **{dim: seconds})
    plan.reservation.commit(usd=usd, input_tokens=inp, output_tokens=out, calls=1, **{dim: seconds})
    return Usage(input_tokens=inp, output_tokens=out, cached_input_tokens=cached, engine_seconds=seconds, usd=usd)


def charge_unknown(engine: "VLLMEngine", plan: CallPlan, prompt_tokens: int, seconds: float, why: str) -> Usage:
    """Unknown outcome: tokens as reserved (the most it could have produced), engine time as measured."""
    held = plan.reservation.amounts
    out = held.output_tokens
    usd = engine.cost(prompt_tokens, out, seconds)
    plan.reservation.commit(usd=usd, input_tokens=held.input_tokens, output_tokens=out, calls=1,
                            **{engine.time_dimension: seconds})
    plan.notes.append(f"{why}: tokens charged as reserved")
    return Usage(input_tokens=held.input_tokens, output_tokens=out, engine_seconds=seconds, usd=usd)
