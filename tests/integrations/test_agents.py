"""ReAct agents end to end with the real vLLM server and the real sandbox: LangGraph's `create_react_agent` over
BudgetedChatModel with Qwen2.5-Coder-1.5B (it picks tools itself: tool choice "auto"), the Python tool running in
budgetflow's process sandbox on the same account. Slower (a 1.5B model on the CPU)."""

from __future__ import annotations

import warnings

import pytest

from budgetflow import Budget
from budgetflow.integrations.langchain import ACCOUNT_KEY, BudgetedChatModel, is_exhausted, python_tool

PROMPT = ("You are a careful assistant. To use a tool, answer only with <tool_call>{\"name\": ..., \"arguments\": "
          "{...}}</tool_call>. After the tool answers, reply with the final answer in one short sentence.")
TASK = "Use the python tool to compute 17 * 23 + 5, then tell me the result."


def _agent(qwen, sandbox, **model):
    with warnings.catch_warnings():  # create_react_agent moved to langchain.agents in LangGraph 1.0; still shipped
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

        return create_react_agent(BudgetedChatModel(llm=qwen, max_tokens=96, **model),
                                  [python_tool(sandbox=sandbox)], prompt=PROMPT)


def test_react_agent_finishes_a_tool_task(qwen, sandbox, ledger):
    run = ledger.root("react", Budget(usd=5.0))
    out = _agent(qwen, sandbox).invoke({"messages": [("user", TASK)]},
                                        {"configurable": {ACCOUNT_KEY: run}, "recursion_limit": 8})
    tool_answers = [m for m in out["messages"] if m.type == "tool"]
    assert tool_answers and "396" in tool_answers[0].content  # the model's code ran in the sandbox
    assert "396" in out["messages"][-1].content
    spent = run.spent()
    assert spent.cpu_seconds > 0 and spent.calls >= 3  # two model calls and one sandbox run, all on the ledger
    assert run.held().usd == 0 and ledger.verify().ok


def test_react_agent_under_a_tiny_cap_stops_cleanly(qwen, sandbox, ledger):
    """A cap of two metered operations: the first model call and the sandbox run fit, the second model call is
    refused before it is sent; the agent ends on a message that says why, the cap held, the ledger verifies."""
    run = ledger.root("react-tiny", Budget(usd=5.0, calls=2))
    out = _agent(qwen, sandbox).invoke({"messages": [("user", TASK)]},
                                        {"configurable": {ACCOUNT_KEY: run}, "recursion_limit": 8})
    last = out["messages"][-1]
    assert is_exhausted(last) and "budget" in last.content and not last.tool_calls
    assert run.spent().calls == 2 and run.held().calls == 0 and ledger.verify().ok


def test_auto_tool_choice_with_qwen(qwen, ledger):
    """The model layer with tool choice "auto" on a model that supports it: a parsed call, metered."""
    acc = ledger.root("auto", Budget(usd=5.0))
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    gen = qwen.generate([{"role": "system", "content": PROMPT},
                         {"role": "user", "content": "What is the weather in Paris?"}],
                        account=acc, tools=tools, max_tokens=64)
    (call,) = gen.tool_calls
    assert call.name == "get_weather" and "paris" in call.arguments["city"].lower()
    assert acc.spent().output_tokens == gen.usage.output_tokens > 0 and acc.held().usd == 0
    with pytest.raises(ValueError):
        qwen.generate("hi", account=acc, tools=tools, tool_choice={"type": "function", "function": {"name": "x"}})
