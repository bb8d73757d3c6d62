"""BudgetMiddleware on LangChain 1.x agents (`langchain.agents.create_agent`) with LangChain's own provider class
(`langchain_openai.ChatOpenAI`) talking to the real vLLM server: each model call reserved before it is sent, the
provider's reported usage committed (equal to the server's counters), max_tokens shrunk to what fits, and the run
ended cleanly — never past the cap — when the budget is spent."""

from __future__ import annotations

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from budgetflow import Budget, BudgetExceeded, PriceBook, UnpricedModel
from budgetflow.integrations.langchain import ACCOUNT_KEY, BudgetMiddleware, is_exhausted


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class ForceToolCall(AgentMiddleware):
    """SmolLM2 does not pick tools on its own: force a call each turn (an agent that never stops by itself — the
    budget is what ends it)."""

    def wrap_model_call(self, request, handler):
        return handler(request.override(tool_choice="required"))


@pytest.fixture
def openai_model(smol_server):
    return ChatOpenAI(model="smollm2-135m", base_url=smol_server.base_url, api_key="local", temperature=0)


def _texts(out):
    return [m for m in out["messages"] if m.type == "ai"]


def test_each_model_call_is_metered_as_the_server_counted(openai_model, prices, ledger, counters):
    acc = ledger.root("mw", Budget(usd=1.0))
    agent = create_agent(openai_model, [], middleware=[BudgetMiddleware(acc, prices=prices, max_tokens=24)])
    before = counters.read()
    out = agent.invoke({"messages": [("user", "Say hello.")]})
    delta = counters.delta(before)
    spent = acc.spent()
    assert spent.calls == 1 == delta["requests"]
    assert spent.input_tokens == delta["prompt"] and spent.output_tokens == delta["generation"] <= 24
    assert spent.usd == pytest.approx(prices.cost("openai/smollm2-135m", input_tokens=spent.input_tokens,
                                                  output_tokens=spent.output_tokens))
    meta = _texts(out)[-1].response_metadata["budgetflow"]
    assert meta["usd"] == pytest.approx(spent.usd) and meta["account"] == acc.name
    assert acc.held().usd == 0 and ledger.verify().ok


def test_a_looping_agent_is_ended_at_its_cap(openai_model, prices, ledger, counters):
    """An agent that would call tools forever: every call is reserved first, the one that no longer fits is never
    sent, the run ends on a message that says why, and the spend stays under the cap."""
    cap = 0.0035  # a few calls at $1/$2 per million tokens (each reserves its byte bound: ~2,300 tokens here)
    acc = ledger.root("loop", Budget(usd=cap))
    agent = create_agent(openai_model, [add], middleware=[
        ForceToolCall(), BudgetMiddleware(acc, prices=prices, max_tokens=64)])  # room for a whole call
    before = counters.read()
    out = agent.invoke({"messages": [("user", "Add 2 and 3, then add 4.")]}, {"recursion_limit": 200})
    delta = counters.delta(before)
    last = out["messages"][-1]
    assert is_exhausted(last) and "budget" in last.content and not last.tool_calls
    spent = acc.spent()
    assert spent.calls >= 2 and spent.calls == delta["requests"]  # every request the server saw is on the ledger
    assert spent.usd <= cap and acc.held().usd == 0 and ledger.verify().ok


def test_max_tokens_is_shrunk_to_what_the_budget_affords(openai_model, prices, ledger, counters):
    acc = ledger.root("shrink", Budget(output_tokens=12))
    agent = create_agent(openai_model, [], middleware=[BudgetMiddleware(acc, prices=prices, max_tokens=200)])
    out = agent.invoke({"messages": [("user", "Write a long story about a dragon.")]})
    meta = _texts(out)[-1].response_metadata["budgetflow"]
    assert meta["max_tokens"] <= 12 and acc.spent().output_tokens <= 12


def test_the_account_comes_from_the_runs_config(openai_model, prices, ledger):
    run = ledger.root("run", Budget(usd=1.0))
    a = run.child("a")
    agent = create_agent(openai_model, [], middleware=[BudgetMiddleware(prices=prices, max_tokens=8)])
    agent.invoke({"messages": [("user", "Hi")]}, {"configurable": {ACCOUNT_KEY: a}})
    assert a.spent().calls == 1


def test_on_exhausted_error_and_unpriced_models_are_refused_before_sending(openai_model, prices, ledger, counters):
    before = counters.read()
    broke = ledger.root("broke", Budget(usd=1e-9))
    agent = create_agent(openai_model, [], middleware=[BudgetMiddleware(broke, prices=prices, on_exhausted="error")])
    with pytest.raises(BudgetExceeded):
        agent.invoke({"messages": [("user", "Hi")]})
    agent = create_agent(openai_model, [], middleware=[BudgetMiddleware(ledger.root("x", Budget(usd=1.0)),
                                                                        prices=PriceBook())])
    with pytest.raises(UnpricedModel):
        agent.invoke({"messages": [("user", "Hi")]})
    assert counters.delta(before)["requests"] == 0
