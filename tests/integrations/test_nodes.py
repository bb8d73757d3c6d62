"""A budget per node of a user's own LangGraph graph (budget_node), on the real vLLM server: each node spends from a
child account, its spend lands in the state, a refusal is state a conditional edge routes on (the graph finishes
with what it has), and a graph resumed from LangGraph's own checkpointer does not pay twice."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from budgetflow import Budget
from budgetflow.integrations.langchain import (ACCOUNT_KEY, BudgetedChatModel, BudgetState, budget_node, exhausted,
                                               node_account)


class State(MessagesState, BudgetState):
    draft: str
    final: str


def _graph(chat: BudgetedChatModel, *, draft_budget: Budget | None = None, review_share: float = 0.5,
           fail_review_once: list[bool] | None = None, checkpointer: Any = None):
    def draft(state: State) -> dict:
        answer = chat.invoke(state["messages"])
        return {"messages": [answer], "draft": answer.content}

    def review(state: State) -> dict:
        if fail_review_once:
            fail_review_once.pop()
            raise RuntimeError("injected crash after the draft was paid for")
        answer = chat.invoke([*state["messages"], ("user", "Shorten your answer to one sentence.")])
        return {"messages": [answer], "final": answer.content}

    def best_so_far(state: State) -> dict:
        return {"final": state.get("draft") or "no answer within the budget"}

    g = StateGraph(State)
    g.add_node("draft", budget_node(draft, budget=draft_budget or Budget(usd=1.0)))
    g.add_node("review", budget_node(review, share=review_share))
    g.add_node("best_so_far", best_so_far)
    g.add_edge(START, "draft")
    g.add_conditional_edges("draft", lambda s: "best_so_far" if exhausted(s) else "review")
    g.add_conditional_edges("review", lambda s: "best_so_far" if exhausted(s) else END)
    g.add_edge("best_so_far", END)
    return g.compile(checkpointer=checkpointer)


def test_each_node_spends_from_its_own_account(engine, ledger):
    run = ledger.root("run", Budget(usd=1.0))
    graph = _graph(BudgetedChatModel(llm=engine, max_tokens=16))
    out = graph.invoke({"messages": [("user", "Name a color.")]}, {"configurable": {ACCOUNT_KEY: run}})
    draft, review = ledger.account(f"{run.name}/draft"), ledger.account(f"{run.name}/review")
    assert out["final"] and not out.get("budget_exhausted")
    assert out["spend"]["draft"] == pytest.approx(draft.spent().usd) and draft.spent().usd > 0
    assert out["spend"]["review"] == pytest.approx(review.spent().usd) and review.spent().usd > 0
    assert run.spent().usd == pytest.approx(draft.spent().usd + review.spent().usd)
    assert draft.spent().calls == review.spent().calls == 1 and ledger.verify().ok


def test_a_node_out_of_budget_routes_to_the_best_answer_so_far(engine, ledger):
    """The review node's share cannot afford a call: the graph does not crash, it routes on `budget_exhausted` and
    ends with the draft; the parent's cap held."""
    run = ledger.root("run", Budget(usd=1.0))
    draft_budget = Budget(usd=1.0)
    graph = _graph(BudgetedChatModel(llm=engine, max_tokens=16), draft_budget=draft_budget, review_share=1e-6)
    out = graph.invoke({"messages": [("user", "Name a color.")]}, {"configurable": {ACCOUNT_KEY: run}})
    assert out["budget_exhausted"].startswith("review:") and "BudgetExceeded" in out["budget_exhausted"]
    assert out["final"] == out["draft"] and out["draft"]
    review = ledger.account(f"{run.name}/review")
    assert review.spent().calls == 0 and run.spent().usd <= 1.0 and ledger.verify().ok


def test_a_raised_budget_exceeded_is_state_too(engine, ledger):
    run = ledger.root("run", Budget(usd=1.0))
    graph = _graph(BudgetedChatModel(llm=engine, max_tokens=16, on_budget_exceeded="raise"), review_share=1e-6)
    out = graph.invoke({"messages": [("user", "Name a color.")]}, {"configurable": {ACCOUNT_KEY: run}})
    assert out["budget_exhausted"].startswith("review:") and out["final"] == out["draft"]


def test_a_resumed_graph_does_not_pay_twice(engine, ledger):
    """The review node crashes after the draft was paid for; resumed from the checkpointer, the draft node is not
    run again (its account is charged once) and the review reopens its account."""
    run = ledger.root("run", Budget(usd=1.0))
    graph = _graph(BudgetedChatModel(llm=engine, max_tokens=16), fail_review_once=[True],
                   checkpointer=InMemorySaver())
    config = {"configurable": {ACCOUNT_KEY: run, "thread_id": "t1"}}
    with pytest.raises(RuntimeError, match="injected"):
        graph.invoke({"messages": [("user", "Name a color.")]}, config)
    draft = ledger.account(f"{run.name}/draft")
    assert draft.spent().calls == 1
    out = graph.invoke(None, config)
    assert out["final"] and draft.spent().calls == 1  # not paid twice
    assert ledger.account(f"{run.name}/review").spent().calls == 1 and ledger.verify().ok


def test_node_account_share_and_reopen(ledger):
    run = ledger.root("run", Budget(usd=1.0, output_tokens=1000))
    a = node_account(run, "a", share=0.25)
    assert a.balance().budget.usd == pytest.approx(0.25) and a.balance().budget.output_tokens == 250
    assert node_account(run, "a", share=0.9).balance().budget.usd == pytest.approx(0.25)  # reopened as it is
    with pytest.raises(ValueError):
        node_account(run, "b", share=1.5)
