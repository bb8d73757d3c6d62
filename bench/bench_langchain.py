"""LangChain integration benchmark on the real vLLM server (Qwen2.5-Coder-1.5B on the CPU: it picks tools itself).

(a) Overhead: `BudgetedChatModel.invoke` against a direct metered `generate` and against an unmetered
    `langchain_openai.ChatOpenAI` call to the same server (same prompt, max_tokens=8, interleaved; median latency and
    the ratios, same run).
(b) The ReAct agent (`langchain.agents.create_agent`, a Python tool running in budgetflow's sandbox) on small tool
    tasks, under caps of 25/50/100% of each task's unconstrained spend, four ways:
      - budgetflow: BudgetedChatModel on the capped account (reserves before each call; exact prompt count),
      - budgetflow: BudgetMiddleware around LangChain's own ChatOpenAI (prompt bounded by bytes, as for any provider),
      - LangChain's ModelCallLimitMiddleware (run_limit = the calls the cap pays for at the unconstrained mean),
      - a post-call budget check (after each model call, end once the spend reached the limit: how LangChain's
        token-budget middleware counts; that class is not in langchain 1.5.2, so it is written here in 10 lines).
    The last two run the same BudgetedChatModel on an uncapped account (metering only), so model, parsing, prompts
    and prices are those of the first arm; only the limit differs. Reported: tasks finished, spend as a multiple of
    the limit (max and mean over tasks), and whether the cap held every time.

    python bench/bench_langchain.py [--tasks 5] [--calls 6] [--base-url URL] [--json bench/results/langchain.json]

Money is priced per token ($1/M input, $2/M output) in every arm so the spends compare. Absolute latencies depend on
the (shared, noisy) machine; compare within a run.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, ModelCallLimitMiddleware, hook_config
from langchain_openai import ChatOpenAI
from provenance import provenance
from rich.console import Console
from rich.table import Table

from budgetflow import Budget, Ledger, PriceBook
from budgetflow.integrations.langchain import ACCOUNT_KEY, BudgetedChatModel, BudgetMiddleware, python_tool
from budgetflow.llm import LOCAL_MODELS, VLLMEngine, VLLMServer, prepare

PRICE = {"input_per_million": 1.0, "output_per_million": 2.0}
MODEL = "qwen2.5-coder-1.5b"
MAX_TOKENS = 96
TASKS = [("Use the python tool to compute 17 * 23 + 5.", 396), ("Use the python tool to compute 2 ** 20.", 1048576),
         ("Use the python tool to compute the sum of the integers from 1 to 100.", 5050),
         ("Use the python tool to compute 12 factorial.", 479001600),
         ("Use the python tool to compute 123 * 456.", 56088), ("Use the python tool to compute 7 ** 7.", 823543),
         ("Use the python tool to compute 3 ** 13.", 1594323)]
SYSTEM = ("You are a careful assistant. To use a tool, answer only with <tool_call>{\"name\": ..., \"arguments\": "
          "{...}}</tool_call>. After the tool answers, reply with the final answer in one short sentence.")


class PostCallBudget(AgentMiddleware):
    """Counts after each model call (as LangChain's own limits do) and ends the run once the limit is reached."""

    def __init__(self, limit_usd: float):
        super().__init__()
        self.limit, self.spent = limit_usd, 0.0

    @hook_config(can_jump_to=["end"])
    def after_model(self, state, runtime):
        self.spent += _cost(state["messages"][-1])
        return {"jump_to": "end"} if self.spent >= self.limit else None


def _cost(message) -> float:
    usage = getattr(message, "usage_metadata", None) or {}
    return (usage.get("input_tokens", 0) * PRICE["input_per_million"]
            + usage.get("output_tokens", 0) * PRICE["output_per_million"]) / 1e6


def _run(agent, question: str, answer: int, account) -> tuple[bool, int]:
    out = agent.invoke({"messages": [("system", SYSTEM), ("user", question)]},
                       {"configurable": {ACCOUNT_KEY: account}, "recursion_limit": 12})
    last = out["messages"][-1]
    finished = last.type == "ai" and not last.tool_calls and str(answer) in str(last.content).replace(",", "")
    return finished, sum(m.type == "ai" and bool(m.usage_metadata) for m in out["messages"])


def overhead(engine: VLLMEngine, chat_openai: ChatOpenAI, ledger: Ledger, calls: int) -> dict:
    acc = ledger.root("overhead", Budget(usd=10.0))
    chat = BudgetedChatModel(model=engine.name, llm=engine, account=acc, max_tokens=8)
    prompt = [{"role": "user", "content": "Say hello."}]
    fns = {"direct generate": lambda: engine.generate(prompt, account=acc, max_tokens=8),
           "BudgetedChatModel.invoke": lambda: chat.invoke("Say hello."),
           "ChatOpenAI.invoke (unmetered)": lambda: chat_openai.invoke("Say hello.", max_tokens=8)}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm up
    for _ in range(calls):  # interleaved, so drift in machine load hits all alike
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["BudgetedChatModel.invoke"]
    return {"median_s": med, "calls": calls,
            "ratio_vs_direct_generate": base / med["direct generate"],
            "ratio_vs_chatopenai": base / med["ChatOpenAI.invoke (unmetered)"]}


def agents(engine: VLLMEngine, chat_openai: ChatOpenAI, prices: PriceBook, tasks: list, fractions: list[float]):
    ledger = Ledger("sqlite://")
    tools = [python_tool()]  # each sandbox run reserved on the run's account as well
    chat = BudgetedChatModel(model=engine.name, llm=engine, max_tokens=MAX_TOKENS)
    base = []
    for i, (question, answer) in enumerate(tasks):  # unconstrained: metered, not capped
        acc = ledger.root(f"unconstrained-{i}", Budget(usd=10.0))
        finished, calls = _run(create_agent(chat, tools), question, answer, acc)
        base.append({"spend": acc.spent().usd, "finished": finished, "calls": calls})
        print(json.dumps({"unconstrained": i, **base[-1]}), flush=True)
    mean_call = sum(b["spend"] for b in base) / max(1, sum(b["calls"] for b in base))
    rows = []
    for frac in fractions:
        for arm in ("budgetflow BudgetedChatModel", "budgetflow BudgetMiddleware + ChatOpenAI",
                    "ModelCallLimitMiddleware", "post-call budget check"):
            results = []
            for i, (question, answer) in enumerate(tasks):
                limit = frac * base[i]["spend"]
                capped = arm.startswith("budgetflow")
                acc = ledger.root(f"{arm}-{frac}-{i}", Budget(usd=limit if capped else 10.0))
                if arm == "budgetflow BudgetedChatModel":
                    agent = create_agent(chat, tools)
                elif arm == "budgetflow BudgetMiddleware + ChatOpenAI":
                    agent = create_agent(chat_openai, tools, middleware=[
                        BudgetMiddleware(prices=prices, price_name=f"openai/{MODEL}", max_tokens=MAX_TOKENS)])
                elif arm == "ModelCallLimitMiddleware":
                    agent = create_agent(chat, tools, middleware=[
                        ModelCallLimitMiddleware(run_limit=max(1, math.floor(limit / mean_call)))])
                else:
                    agent = create_agent(chat, tools, middleware=[PostCallBudget(limit)])
                finished, _ = _run(agent, question, answer, acc)
                spend = acc.spent().usd
                results.append({"limit": limit, "spend": spend, "finished": finished, "multiple": spend / limit})
            rows.append({"cap_fraction": frac, "arm": arm, "finished": sum(r["finished"] for r in results),
                         "tasks": len(results), "max_multiple": max(r["multiple"] for r in results),
                         "mean_multiple": statistics.mean(r["multiple"] for r in results),
                         "cap_held_every_time": all(r["spend"] <= r["limit"] * (1 + 1e-9) for r in results),
                         "runs": results})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "runs"}), flush=True)
    return {"unconstrained": base, "mean_cost_per_call": mean_call, "rows": rows, "ledger_verified": ledger.verify().ok}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--calls", type=int, default=6, help="calls per variant in the overhead measurement")
    parser.add_argument("--base-url", help=f"an already running vLLM server serving {MODEL} (…/v1)")
    parser.add_argument("--json", default="bench/results/langchain.json")
    args = parser.parse_args()
    console = Console()
    prices = PriceBook()
    prices.set(f"local/{MODEL}", **PRICE)
    prices.set(f"openai/{MODEL}", **PRICE)
    server = None
    if args.base_url is None:
        server = VLLMServer(prepare(MODEL), MODEL, device="cpu", max_model_len=4096,
                            extra_args=LOCAL_MODELS[MODEL].server_args).start()
    base_url = args.base_url or server.base_url
    try:
        engine = VLLMEngine(f"local/{MODEL}", base_url, MODEL, prices=prices, device="cpu", auto_tools=True)
        chat_openai = ChatOpenAI(model=MODEL, base_url=base_url, api_key="local", temperature=0,
                                 max_tokens=MAX_TOKENS, max_retries=0)
        ledger = Ledger("sqlite://")
        for attempt in range(3):  # under heavy load a calibration can be cut: retry, so no capped account pays for it
            engine.calibrate(ledger.root(f"calibration-{attempt}", Budget()))
            if engine.throughput.calibrated:
                break
        over = overhead(engine, chat_openai, ledger, args.calls)
        agent = agents(engine, chat_openai, prices, TASKS[:args.tasks], [0.25, 0.5, 1.0])
    finally:
        if server is not None:
            server.stop()
    table = Table(title="(a) overhead: median latency of one call (max_tokens=8)")
    table.add_column("variant")
    table.add_column("median s", justify="right")
    for name, s in over["median_s"].items():
        table.add_row(name, f"{s:.4f}")
    console.print(table)
    console.print(f"BudgetedChatModel.invoke / direct generate = {over['ratio_vs_direct_generate']:.3f}; "
                  f"/ unmetered ChatOpenAI = {over['ratio_vs_chatopenai']:.3f}")
    finished_u = sum(b["finished"] for b in agent["unconstrained"])
    table = Table(title=f"(b) ReAct agent on {len(TASKS[:args.tasks])} tool tasks (unconstrained: {finished_u} finished, "
                        f"${sum(b['spend'] for b in agent['unconstrained']):.6f})")
    for col in ("cap", "arm", "finished", "max spend/limit", "mean spend/limit", "cap held"):
        table.add_column(col)
    for row in agent["rows"]:
        table.add_row(f"{row['cap_fraction']:.0%}", row["arm"], f"{row['finished']}/{row['tasks']}",
                      f"{row['max_multiple']:.2f}", f"{row['mean_multiple']:.2f}",
                      "yes" if row["cap_held_every_time"] else "NO")
    console.print(table)
    result = {"bench": "langchain", **provenance(), "overhead": over, "agent": agent}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1))
    print(json.dumps({"ratio_vs_direct_generate": over["ratio_vs_direct_generate"],
                      "ratio_vs_chatopenai": over["ratio_vs_chatopenai"],
                      "rows": [{k: r[k] for k in ("cap_fraction", "arm", "finished", "max_multiple",
                                                  "cap_held_every_time")} for r in agent["rows"]]}))


if __name__ == "__main__":
    main()
