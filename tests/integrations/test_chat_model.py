"""BudgetedChatModel against the real vLLM server (SmolLM2): every LangChain entry point metered on the ledger, equal
to the server's own counters; the account from the constructor or from the run's config; tools and structured
output; a refusal as a message (or an error); an early-stopped stream charged and closed."""

from __future__ import annotations

import asyncio
import time

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from pydantic import BaseModel, Field

from budgetflow import Budget, BudgetExceeded
from budgetflow.budget import to_units
from budgetflow.integrations.langchain import ACCOUNT_KEY, BudgetedChatModel, is_exhausted

from ..conftest import PRICE_PER_CPU_SECOND

STORY = "Write a long story about a dragon."


class Weather(BaseModel):
    """The weather in a city."""

    city: str = Field(description="the city", max_length=24)  # structured outputs hold SmolLM2 to it
    temperature: int = Field(description="degrees Celsius")


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"sunny in {city}"


def _assert_metered(account, message: AIMessage, delta: dict) -> None:
    usage = message.usage_metadata
    spent = account.spent()
    assert usage["output_tokens"] == spent.output_tokens == delta["generation"] > 0
    assert usage["input_tokens"] == spent.input_tokens == delta["prompt"]
    meta = message.response_metadata["budgetflow"]
    # the ledger keeps dollars in whole nano-dollars, rounded up: the call's cost is exactly what it committed
    assert to_units("usd", meta["usd"], round_up=True) == to_units("usd", spent.usd, round_up=True)
    assert spent.usd == pytest.approx(spent.cpu_seconds *
                                                                                     PRICE_PER_CPU_SECOND, rel=1e-6)
    assert meta["account"] == account.name and meta["usd_left"] == pytest.approx(account.remaining().usd)
    assert account.held().usd == 0


def test_invoke_is_metered_exactly(chat, account, counters):
    before = counters.read()
    message = chat.invoke("Say hello.")
    assert isinstance(message, AIMessage) and message.content
    _assert_metered(account, message, counters.delta(before))


async def test_ainvoke_is_metered_exactly(chat, account, counters):
    before = counters.read()
    message = await chat.ainvoke([HumanMessage("Say hello.")])
    _assert_metered(account, message, counters.delta(before))


def test_the_account_comes_from_the_runs_config(engine, ledger, counters):
    """One model, many tasks: each run names its account in config["configurable"] (an Account, or a name with
    ledger=), and only that account is charged."""
    run = ledger.root("run", Budget(usd=5.0))
    a, b = run.child("task-a"), run.child("task-b")
    chat = BudgetedChatModel(llm=engine, ledger=ledger, max_tokens=8)
    with pytest.raises(ValueError, match="no account"):
        chat.invoke("Hi")
    chat.invoke("Hi", config={"configurable": {ACCOUNT_KEY: a}})
    chat.invoke("Hi", config={"configurable": {ACCOUNT_KEY: b.name}})  # by name
    assert a.spent().calls == 1 and b.spent().calls == 1 and run.spent().calls == 2


def test_stream_is_metered_and_its_last_chunk_carries_the_usage(chat, account, counters):
    before = counters.read()
    chunks = list(chat.stream(STORY))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert isinstance(total, AIMessageChunk) and len(chunks) > 3 and total.content
    _assert_metered(account, total, counters.delta(before))


def test_a_stream_stopped_early_is_cut_and_closed(engine, ledger, counters):
    acc = ledger.root("early", Budget(usd=1.0))
    chat = BudgetedChatModel(llm=engine, account=acc, max_tokens=300, min_tokens=300)
    before = counters.read()
    for i, _ in enumerate(chat.stream(STORY)):
        if i == 3:
            break
    time.sleep(0.5)
    generated = counters.delta(before)["generation"]
    assert 0 < generated < 300  # the server stopped when the consumer did
    spent = acc.spent()
    assert acc.held().usd == 0 and spent.calls == 1 and spent.output_tokens >= generated
    assert ledger.verify().ok


async def test_astream_and_abatch(chat, account, counters):
    before = counters.read()
    text = "".join([c.content async for c in chat.astream(STORY)])
    answers = await chat.abatch(["Say hi.", "Say bye."])
    delta = counters.delta(before)
    assert text and all(isinstance(m, AIMessage) for m in answers)
    assert account.spent().calls == 3 and account.spent().output_tokens == delta["generation"]


def test_batch_charges_each_call(chat, account, counters):
    before = counters.read()
    answers = chat.batch(["Say hi.", "Say bye.", "Count to three."])
    spent = account.spent()
    assert spent.calls == 3 and spent.output_tokens == counters.delta(before)["generation"]
    assert spent.output_tokens == sum(m.usage_metadata["output_tokens"] for m in answers)


def test_bind_tools_with_a_named_choice_returns_parsed_calls(chat, account):
    message = chat.bind_tools([get_weather], tool_choice="get_weather").invoke("What is the weather in Paris?",
                                                                               max_tokens=48)
    (call,) = message.tool_calls[:1]
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str) and call["id"]
    assert account.spent().calls == 1


def test_auto_tool_choice_is_refused_for_smollm2(chat, account):
    from budgetflow.llm import LLMError

    with pytest.raises(LLMError, match="auto"):
        chat.bind_tools([get_weather]).invoke("What is the weather in Paris?")
    assert account.spent().calls == 0


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_with_structured_output(chat, account, method):
    weather = chat.model_copy(update={"max_tokens": 64}).with_structured_output(Weather, method=method).invoke(
        "In Oslo it is 12 degrees Celsius. Report the weather.")
    assert isinstance(weather, Weather) and weather.city
    assert account.spent().calls == 1


def test_with_structured_output_include_raw(chat):
    out = chat.model_copy(update={"max_tokens": 64}).with_structured_output(Weather, include_raw=True).invoke(
        "In Rome it is 20 degrees Celsius. Report the weather.")
    assert isinstance(out["raw"], AIMessage) and out["parsing_error"] is None and isinstance(out["parsed"], Weather)


def test_a_refused_call_is_a_message_that_ends_the_loop(engine, ledger, counters):
    """Nothing is sent; the answer says why and calls no tool (an agent loop ends on it)."""
    acc = ledger.root("broke", Budget(usd=1e-7))
    before = counters.read()
    message = BudgetedChatModel(llm=engine, account=acc).invoke("Hi")
    assert is_exhausted(message) and not message.tool_calls and "budget" in message.content
    assert message.usage_metadata["output_tokens"] == 0
    with pytest.raises(BudgetExceeded):
        BudgetedChatModel(llm=engine, account=acc, on_budget_exceeded="raise").invoke("Hi")
    with pytest.raises(BudgetExceeded):  # structured output has no answer to parse: it raises
        BudgetedChatModel(llm=engine, account=acc).with_structured_output(Weather).invoke("Hi")
    assert counters.delta(before)["requests"] == 0 and acc.spent().calls == 0


def test_a_shrunk_call_says_so(engine, ledger):
    """A budget that affords only part of max_tokens: the call is sent with fewer, and the metadata says so."""
    acc = ledger.root("tight", Budget(output_tokens=40))
    message = BudgetedChatModel(llm=engine, account=acc, max_tokens=200).invoke(STORY)
    meta = message.response_metadata["budgetflow"]
    assert meta["shrunk"] and meta["max_tokens"] <= 40 < meta["requested_max_tokens"] and meta["notes"]
    assert acc.spent().output_tokens <= 40


async def test_a_cancelled_ainvoke_is_settled(engine, ledger):
    acc = ledger.root("cancel", Budget(usd=1.0))
    chat = BudgetedChatModel(llm=engine, account=acc, max_tokens=300, min_tokens=300)
    task = asyncio.create_task(chat.ainvoke(STORY))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert acc.held().usd == 0 and acc.spent().calls == 1 and ledger.verify().ok
