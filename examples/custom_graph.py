"""A hand-written LangGraph StateGraph with two budgeted nodes.

`draft` writes an answer, `review` tightens it. Each node runs on its own child account of the run's account
(`budget_node`: a fixed cap for the draft, a share of what is left for the review), its spend lands in the graph's
state, and a node that the budget refuses does not crash the graph: `budget_exhausted` is set and a conditional edge
routes to `best_so_far`, which finishes with the draft. The same compiled graph runs several tasks, each on its own
account named in the run's config.

    python examples/custom_graph.py [--model local/smollm2-135m] [--budget-usd 0.02] [--cpu-hour-usd 3.6]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from langgraph.graph import END, START, MessagesState, StateGraph

from budgetflow import Budget, Ledger, PriceBook
from budgetflow.integrations.langchain import ACCOUNT_KEY, BudgetedChatModel, BudgetState, budget_node, exhausted
from budgetflow.llm import shutdown

QUESTIONS = ["Explain what a hash table is.", "Why is the sky blue?", "What does a compiler do?"]


class State(MessagesState, BudgetState):
    draft: str
    final: str


def build(chat: BudgetedChatModel, draft_usd: float, review_share: float):
    def draft(state: State) -> dict:
        answer = chat.invoke(state["messages"])
        return {"messages": [answer], "draft": answer.content}

    def review(state: State) -> dict:
        answer = chat.invoke([*state["messages"], ("user", "Rewrite your answer in one clear sentence.")])
        return {"messages": [answer], "final": answer.content}

    def best_so_far(state: State) -> dict:
        return {"final": state.get("draft") or "(no answer within the budget)"}

    graph = StateGraph(State)
    graph.add_node("draft", budget_node(draft, budget=Budget(usd=draft_usd)))
    graph.add_node("review", budget_node(review, share=review_share))
    graph.add_node("best_so_far", best_so_far)
    graph.add_edge(START, "draft")
    graph.add_conditional_edges("draft", lambda s: "best_so_far" if exhausted(s) else "review")
    graph.add_conditional_edges("review", lambda s: "best_so_far" if exhausted(s) else END)
    graph.add_edge("best_so_far", END)
    return graph.compile()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="local/smollm2-135m")
    parser.add_argument("--budget-usd", type=float, default=0.02, help="the cap of the whole run (all tasks)")
    parser.add_argument("--cpu-hour-usd", type=float, default=3.6)
    parser.add_argument("--db", default="runs/custom-graph/ledger.db")
    args = parser.parse_args()

    prices = PriceBook()
    prices.set(args.model, cpu_hour=args.cpu_hour_usd)
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    Path(args.db).unlink(missing_ok=True)
    ledger = Ledger(args.db)
    run = ledger.root("custom-graph", Budget(usd=args.budget_usd))
    per_task = args.budget_usd / len(QUESTIONS)
    graph = build(BudgetedChatModel(model=args.model, prices=prices, max_tokens=96), draft_usd=per_task / 2,
                  review_share=0.5)
    try:
        for i, question in enumerate(QUESTIONS):
            task = run.child(f"task-{i}", Budget(usd=per_task))  # one compiled graph, one account per task
            out = graph.invoke({"messages": [("user", question)]}, {"configurable": {ACCOUNT_KEY: task}})
            spend = ", ".join(f"{node} ${usd:.6f}" for node, usd in out.get("spend", {}).items())
            note = f"  [routed to best_so_far: {out['budget_exhausted']}]" if out.get("budget_exhausted") else ""
            print(f"task-{i}: {question}\n  spend: {spend}{note}\n  answer: {str(out['final'])[:200]!r}")
    finally:
        shutdown()
    print(f"\nrun total: ${run.spent().usd:.6f} of ${args.budget_usd} cap; ledger verified: {ledger.verify().ok}")


if __name__ == "__main__":
    main()
