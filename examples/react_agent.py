"""A tool-using ReAct agent (LangGraph's `create_react_agent`) under a hard budget.

The model is a budgetflow model behind `BudgetedChatModel` (default: Qwen2.5-Coder-1.5B on vLLM, which picks tools
itself); its tools are a Python interpreter running in budgetflow's sandbox and a search over this repository's
files. Every model call and every sandbox run reserves its worst case on the run's account before it starts, so the
agent stops — with a final message that says why — when the cap is reached, never past it. The spend of each graph
node is printed as the agent runs, and the ledger is verified at the end.

    python examples/react_agent.py [--model local/qwen2.5-coder-1.5b] [--budget-usd 0.50] [--cpu-hour-usd 3.6]
        [--question "..."]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from budgetflow import Budget, Ledger, PriceBook
from budgetflow.integrations.langchain import (ACCOUNT_KEY, BudgetedChatModel, file_search_tool, is_exhausted,
                                               python_tool)
from budgetflow.llm import shutdown

ROOT = Path(__file__).resolve().parent.parent
PROMPT = ("You are a careful assistant. To use a tool, answer only with <tool_call>{\"name\": ..., \"arguments\": "
          "{...}}</tool_call>. After the tools answer, reply with the final answer in one short sentence.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="local/qwen2.5-coder-1.5b")
    parser.add_argument("--budget-usd", type=float, default=0.50)
    parser.add_argument("--cpu-hour-usd", type=float, default=3.6, help="what an hour of the engine costs you")
    parser.add_argument("--question", default="Use the python tool to compute the sum of the squares of 1..20.")
    parser.add_argument("--db", default="runs/react-agent/ledger.db")
    args = parser.parse_args()

    prices = PriceBook()
    prices.set(args.model, cpu_hour=args.cpu_hour_usd)  # local engines are priced by the engine-second
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    Path(args.db).unlink(missing_ok=True)
    ledger = Ledger(args.db)
    run = ledger.root("react-agent", Budget(usd=args.budget_usd))
    tools = [python_tool(usd_per_cpu_second=args.cpu_hour_usd / 3600),  # sandbox CPU is paid from the same budget
             file_search_tool(ROOT / "budgetflow")]
    with warnings.catch_warnings():  # LangGraph 1.x marks create_react_agent as moved to langchain.agents
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

        agent = create_react_agent(BudgetedChatModel(model=args.model, prices=prices, max_tokens=256), tools,
                                   prompt=PROMPT)
    config = {"configurable": {ACCOUNT_KEY: run}, "recursion_limit": 20}
    spend_by_node: dict[str, float] = {}
    last = None
    try:
        before = 0.0
        for update in agent.stream({"messages": [("user", args.question)]}, config, stream_mode="updates"):
            for node, delta in update.items():
                now = run.spent().usd
                spend_by_node[node] = spend_by_node.get(node, 0.0) + now - before
                before = now
                for message in (delta or {}).get("messages", []):
                    last = message
                    what = (f"calls {[c['name'] for c in message.tool_calls]}" if getattr(message, "tool_calls", None)
                            else repr(str(message.content)[:120]))
                    print(f"[{node:>6}] node total ${spend_by_node[node]:.6f}, run total ${now:.6f}  {what}")
    finally:
        shutdown()
    print()
    for node, usd in spend_by_node.items():
        print(f"spend of node {node!r}: ${usd:.6f}")
    print(f"total: ${run.spent().usd:.6f} of ${args.budget_usd} cap; ledger verified: {ledger.verify().ok}")
    if last is not None and is_exhausted(last):
        print("stopped by the budget:", last.content)


if __name__ == "__main__":
    main()
