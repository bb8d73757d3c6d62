"""Tool calling, structured output, streaming and async in the model layer (issue 13), against the real vLLM server
(SmolLM2, served with the tool flags get_llm gives it) and, for the remote path, LiteLLM in front of the same server.
The server's own Prometheus counters are the independent truth the ledger is compared with."""

from __future__ import annotations

import asyncio
import json
import time

import jsonschema
import pytest

from budgetflow import Budget, BudgetExceeded
from budgetflow.llm import LiteLLMModel, LLMError

from ..conftest import PRICE_PER_CPU_SECOND
from .fault_proxy import FaultProxy

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
STORY = [{"role": "user", "content": "Write a long story about a dragon."}]
ANSWER = {"type": "object", "properties": {"city": {"type": "string"}, "temperature": {"type": "integer"}},
          "required": ["city", "temperature"], "additionalProperties": False}


def _named(name: str = "get_weather") -> dict:
    return {"type": "function", "function": {"name": name}}


def _metered_exactly(account, gen, delta) -> None:
    spent = account.spent()
    assert spent.output_tokens == gen.usage.output_tokens == delta["generation"] > 0
    assert spent.input_tokens == gen.usage.input_tokens == delta["prompt"]
    assert spent.cpu_seconds == pytest.approx(gen.usage.engine_seconds, abs=1e-6)
    assert spent.usd == pytest.approx(spent.cpu_seconds * PRICE_PER_CPU_SECOND, rel=1e-6)
    assert account.held().usd == 0 and spent.calls == 1


# ---------------------------------------------------------------------------------------------------- tool calls


@pytest.mark.parametrize("choice", [_named(), "required"])
def test_forced_tool_call_is_parsed_and_metered_exactly(engine, account, counters, choice):
    """Named and "required" tool choice work with SmolLM2 (vLLM's structured outputs hold the call to the tool's
    schema); the call comes back parsed, and the ledger equals what the server counted."""
    before = counters.read()
    gen = engine.generate(ASK, account=account, tools=[WEATHER], tool_choice=choice, max_tokens=48)
    _metered_exactly(account, gen, counters.delta(before))
    (call,) = gen.tool_calls[:1]
    assert call.name == "get_weather" and call.id and call.error is None
    assert isinstance(call.arguments, dict) and isinstance(call.arguments["city"], str)
    assert json.loads(call.raw_arguments) == call.arguments


def test_auto_tool_choice_is_refused_for_a_model_that_cannot_pick_tools(engine, account, counters):
    """SmolLM2's chat template never shows it the tools: "auto" would answer blind. Refused before anything."""
    before = counters.read()
    with pytest.raises(LLMError, match="tool_choice 'auto'"):
        engine.generate(ASK, account=account, tools=[WEATHER], max_tokens=16)
    assert counters.delta(before) == {"prompt": 0, "generation": 0, "requests": 0}
    assert account.spent().calls == 0 and account.held().usd == 0


def test_a_tool_call_cut_short_keeps_its_raw_text(engine, account):
    """Out of tokens mid-arguments: arguments is None, the raw text and the reason are kept."""
    gen = engine.generate(ASK, account=account, tools=[WEATHER], tool_choice=_named(), max_tokens=3)
    assert gen.completions[0].finish_reason == "length"
    for call in gen.tool_calls:  # cut inside its JSON, or before any of it: never read as a call with no arguments
        assert call.arguments is None and call.error
        assert ("not valid JSON" in call.error) if call.raw_arguments.strip() else ("cut at max_tokens" in call.error)


def test_bad_tool_requests_are_clear_errors_and_cost_nothing(engine, account):
    with pytest.raises(ValueError, match="not among the tools"):
        engine.generate(ASK, account=account, tools=[WEATHER], tool_choice=_named("nope"))
    with pytest.raises(ValueError, match="needs tools"):
        engine.generate(ASK, account=account, tool_choice="required")
    with pytest.raises(LLMError, match="only function tools"):
        engine.generate(ASK, account=account, tools=[{"type": "web_search"}], tool_choice="required")
    assert account.spent().calls == 0


# ---------------------------------------------------------------------------------------------------- structured output


@pytest.mark.parametrize("prompt", [ASK, "Name a city and its temperature as JSON."])
def test_structured_output_validates_against_its_schema(engine, account, counters, prompt):
    before = counters.read()
    gen = engine.generate(prompt, account=account, max_tokens=64, response_format={
        "type": "json_schema", "json_schema": {"name": "weather", "schema": ANSWER}})
    _metered_exactly(account, gen, counters.delta(before))
    assert gen.completions[0].finish_reason == "stop"
    jsonschema.validate(json.loads(gen.text), ANSWER)


# ---------------------------------------------------------------------------------------------------- streaming, async


def test_stream_yields_the_answer_and_meters_it_exactly(engine, account, counters):
    before = counters.read()
    with engine.stream(STORY, account=account, max_tokens=24) as stream:
        deltas = list(stream)
    gen = stream.generation
    _metered_exactly(account, gen, counters.delta(before))
    assert "".join(d.text for d in deltas) == gen.text and len(deltas) > 3
    assert deltas[-1].finish_reason in ("stop", "length")


def test_streamed_tool_call_assembles_from_its_pieces(engine, account):
    stream = engine.stream(ASK, account=account, tools=[WEATHER], tool_choice="required", max_tokens=48)
    pieces = [p for d in stream for p in d.tool_calls]
    (call,) = stream.generation.tool_calls[:1]
    assert "".join(p.arguments for p in pieces if p.index == 0) == call.raw_arguments
    assert pieces[0].name == "get_weather" and isinstance(call.arguments, dict)


async def test_agenerate_and_astream_meter_exactly(engine, account, counters):
    before = counters.read()
    gens = await asyncio.gather(*(engine.agenerate(STORY, account=account, max_tokens=16, temperature=1.0)
                                  for _ in range(4)))
    delta = counters.delta(before)
    spent = account.spent()
    assert spent.output_tokens == sum(g.usage.output_tokens for g in gens) == delta["generation"]
    assert spent.input_tokens == sum(g.usage.input_tokens for g in gens) == delta["prompt"]
    assert spent.calls == 4 and account.held().usd == 0
    before = counters.read()
    stream = engine.astream(STORY, account=account, max_tokens=16)
    text = "".join([d.text async for d in stream])
    assert text == stream.generation.text
    assert counters.delta(before)["generation"] == stream.generation.usage.output_tokens


def test_early_stop_is_cut_and_charged_what_it_used(engine, ledger, counters):
    """A caller that stops reading after 5 tokens: the request is cut (the server generates nothing more), its
    engine time — and so its dollars — charged exactly as measured, tokens at most as reserved, nothing left held."""
    acc = ledger.root("early", Budget(usd=1.0))
    before = counters.read()
    stream = engine.stream(STORY, account=acc, max_tokens=300, min_tokens=300)  # no EOS before 300 tokens
    received = 0
    for _ in stream:
        received += 1
        if received == 5:
            break
    gen = stream.close()
    time.sleep(0.5)  # let the server account the abort
    generated = counters.delta(before)["generation"]
    assert generated < 300  # the engine stopped: it did not run on to max_tokens
    assert gen.completions[0].finish_reason == "stopped" and any("stopped by the caller" in n for n in gen.notes)
    spent = acc.spent()
    assert spent.cpu_seconds == pytest.approx(gen.usage.engine_seconds, abs=1e-6) and spent.cpu_seconds > 0
    assert spent.usd == pytest.approx(spent.cpu_seconds * PRICE_PER_CPU_SECOND, rel=1e-6)
    assert generated <= spent.output_tokens <= 300  # never under what was generated
    assert acc.held().usd == 0 and spent.calls == 1 and ledger.verify().ok


async def test_a_cancelled_call_is_cut_settled_and_closed(engine, ledger, counters):
    acc = ledger.root("cancelled", Budget(usd=1.0))
    before = counters.read()
    task = asyncio.create_task(engine.agenerate(STORY, account=acc, max_tokens=300, min_tokens=300))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # settled before the cancellation returned: nothing held, the engine time as measured
    assert acc.held().usd == 0 and acc.spent().calls == 1
    spent = acc.spent()
    assert spent.usd == pytest.approx(spent.cpu_seconds * PRICE_PER_CPU_SECOND, rel=1e-6) and spent.cpu_seconds > 0
    time.sleep(0.5)
    generated = counters.delta(before)["generation"]
    assert 0 < generated < 300 and generated <= spent.output_tokens
    assert ledger.verify().ok


def test_a_refused_stream_raises_before_returning(engine, ledger, counters):
    acc = ledger.root("broke-stream", Budget(usd=1e-7))
    before = counters.read()
    with pytest.raises(BudgetExceeded):
        engine.stream(STORY, account=acc, max_tokens=32)
    assert counters.delta(before)["requests"] == 0


# ---------------------------------------------------------------------------------------------------- the remote path


@pytest.fixture
def remote(smol_server, prices):
    with FaultProxy(smol_server.root_url) as proxy:
        yield proxy, LiteLLMModel("openai/smollm2-135m", prices=prices, api_base=proxy.url, api_key="local",
                                  backoff=0.05)


def test_remote_tool_calls_are_parsed(remote, account):
    proxy, model = remote
    gen = model.generate(ASK, account=account, tools=[WEATHER], tool_choice=_named(), max_tokens=48)
    (call,) = gen.tool_calls[:1]
    assert call.name == "get_weather" and isinstance(call.arguments, dict)
    (reported,) = proxy.upstream_usage
    assert account.spent().output_tokens == reported["completion_tokens"]


def test_a_large_tool_schema_with_a_tiny_budget_is_refused_before_dispatch(remote, ledger):
    """Tools are part of the reserved prompt: a budget that affords the bare prompt does not afford it with a large
    tool schema, and the provider never sees the request."""
    proxy, model = remote
    big = {"type": "function", "function": {"name": "lookup", "description": "x" * 20_000,
                                            "parameters": {"type": "object", "properties": {}}}}
    bare = model.prompt_bound(ASK)
    with_tools = model.prompt_bound(ASK, tools=[big], tool_choice="required")
    assert with_tools > bare + 20_000
    # affords the bare prompt and 16 output tokens, not the schema
    acc = ledger.root("tiny-tools", Budget(usd=(bare * 1.0 + 16 * 2.0) / 1e6 * 1.5))
    with pytest.raises(BudgetExceeded):
        model.generate(ASK, account=acc, tools=[big], tool_choice="required", max_tokens=16)
    assert proxy.received == 0 and acc.spent().calls == 0
    model.generate(ASK, account=acc, max_tokens=16)  # the same budget affords the call without the schema
    assert proxy.received == 1


def test_remote_stream_stopped_early_is_charged_as_reserved(remote, ledger):
    proxy, model = remote
    acc = ledger.root("remote-early", Budget(usd=1.0))
    stream = model.stream(STORY, account=acc, max_tokens=200, min_tokens=1)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    gen = stream.close()
    assert gen.completions[0].finish_reason == "stopped"
    assert acc.spent().output_tokens == 200 and acc.held().usd == 0  # unknown once closed: as reserved
    assert ledger.verify().ok
