"""Solve a small coding task with the agent graph (solver → verifier → selector) under a hard budget.

budgetflow starts the local model on vLLM (CPU here, GPU when present), samples candidates in waves, checks each on
the task's visible tests in the sandbox, stops when one passes or when the budget cannot afford another wave, and
prints what every agent spent, read back from the ledger. Kill it (Ctrl-C) and run it again with the same
--thread-id: it resumes from the last finished node and does not pay twice for finished work.

    python examples/solve_codegen.py [--model local/qwen2.5-coder-1.5b] [--budget-usd 0.02] [--thread-id demo]
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from budgetflow import Budget, Ledger, PriceBook, solve
from budgetflow.agents import AgentConfig
from budgetflow.llm import shutdown
from budgetflow.tasks import CodeTask
from budgetflow.verifiers import UnitTestVerifier, passes_hidden_tests

TASK = CodeTask(
    id="is_palindrome",
    entry_point="is_palindrome",
    prompt='def is_palindrome(s: str) -> bool:\n    """Return True if s reads the same forwards and backwards, '
           'ignoring case.\n    >>> is_palindrome("Level")\n    True\n    """\n',
    visible_tests=('assert is_palindrome("Level")', 'assert not is_palindrome("ab")'),
    hidden_tests='assert is_palindrome("")\nassert is_palindrome("abcBA")\nassert not is_palindrome("abca")\n',
)


def price_name(model: str) -> str:
    """The PriceBook entry a model name is priced under (vllm/<served>@<url> is priced as vllm/<served>)."""
    return model.split("@")[0] if model.startswith("vllm/") else model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="local/qwen2.5-coder-1.5b")
    parser.add_argument("--budget-usd", type=float, default=0.02)
    parser.add_argument("--cpu-hour-usd", type=float, default=0.36, help="what an hour of the engine costs you")
    parser.add_argument("--strategy", default="sample", choices=["sample", "best_of_n"])
    parser.add_argument("--db", default="runs/solve-codegen/ledger.db")
    parser.add_argument("--checkpoint", default="runs/solve-codegen/checkpoints.sqlite")
    parser.add_argument("--thread-id", default=None, help="name the run to resume it later")
    args = parser.parse_args()
    console = Console()

    prices = PriceBook()
    prices.set(price_name(args.model), cpu_hour=args.cpu_hour_usd)  # local engines are priced by the engine-second
    ledger = Ledger(args.db)
    try:
        with console.status(f"solving {TASK.id} with {args.model} under ${args.budget_usd}..."):
            res = solve(TASK, model=args.model, budget=args.budget_usd, prices=prices, ledger=ledger,
                        checkpoint=args.checkpoint, thread_id=args.thread_id, strategy=args.strategy,
                        config=AgentConfig(wave_size=4, max_waves=3))
        console.print(f"thread [bold]{res.thread_id}[/bold]{' (resumed)' if res.resumed else ''}: "
                      f"stopped because [bold]{res.reason}[/bold], {len(res.candidates)} candidates, "
                      f"selected by {res.selection}")
        for note in res.notes:
            console.print(f"  {note}")
        if res.answer:
            console.print(res.answer)
            hidden = passes_hidden_tests(UnitTestVerifier(), TASK, res.selected.text,
                                         account=ledger.root("solve-codegen-scoring", Budget()))
            console.print(f"hidden tests (scoring only): {'[green]pass' if hidden else '[red]fail'}")
        table = Table("agent", "USD", "calls", "output tokens", "engine/CPU s")
        for agent, spent in res.spend.items():
            table.add_row(agent, f"{spent.usd:.6f}", str(spent.calls), f"{spent.output_tokens:,}",
                          f"{spent.cpu_seconds:.2f}")
        console.print(table)
        assert res.spend["total"].usd <= args.budget_usd, "the budget was exceeded"
        console.print(ledger.verify().summary())
    finally:
        ledger.close()
        shutdown()


if __name__ == "__main__":
    main()
