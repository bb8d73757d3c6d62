"""A local model on vLLM (CPU), every call metered on a SQLite ledger under a hard budget priced by engine time.

budgetflow prepares SmolLM2-135M from its PyPI package (once), starts a vLLM server, and samples completions for a
few coding prompts. Each call reserves its worst case (prompt + max_tokens at the engine's measured speed), shrinks
max_tokens when the budget cannot afford it, and is refused — before anything is sent — when not even a short
completion fits. The run ends at the cap, never past it.

    python examples/local_model_budget.py [--model local/smollm2-135m] [--budget-usd 0.002] [--cpu-hour-usd 0.36]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from budgetflow import Budget, BudgetExceeded, Ledger, PriceBook
from budgetflow.llm import get_llm, shutdown

PROMPTS = [
    "def is_palindrome(s: str) -> bool:\n    \"\"\"Return True if s reads the same backwards.\"\"\"\n",
    "def fizzbuzz(n: int) -> list[str]:\n    \"\"\"FizzBuzz from 1 to n.\"\"\"\n",
    "def gcd(a: int, b: int) -> int:\n    \"\"\"Greatest common divisor.\"\"\"\n",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="local/smollm2-135m")
    parser.add_argument("--budget-usd", type=float, default=0.002)
    parser.add_argument("--cpu-hour-usd", type=float, default=0.36, help="what an hour of the engine costs you")
    parser.add_argument("--db", default="runs/local-model/ledger.db")
    args = parser.parse_args()
    console = Console()

    prices = PriceBook()
    prices.set(args.model, cpu_hour=args.cpu_hour_usd)  # local engines are priced by the engine-second
    Path(args.db).unlink(missing_ok=True)
    ledger = Ledger(args.db)
    run = ledger.root("local-demo", Budget(usd=args.budget_usd))
    with console.status(f"preparing and starting {args.model} on vLLM..."):
        llm = get_llm(args.model, prices=prices)
    try:
        for round_no in range(1, 100):
            for i, prompt in enumerate(PROMPTS):
                task = run.child(f"task-{i}")
                try:
                    gen = llm.generate(prompt, account=task, n=4, max_tokens=96, temperature=0.8, min_tokens=8)
                except BudgetExceeded as exc:
                    console.print(f"[yellow]refused before sending:[/yellow] {exc}")
                    raise StopIteration
                shrink = f" [yellow]({gen.notes[0]})[/yellow]" if gen.notes else ""
                console.print(f"round {round_no} task-{i}: {len(gen.completions)} samples, "
                              f"{gen.usage.output_tokens} tokens, {gen.usage.engine_seconds:.2f} engine-s, "
                              f"${gen.usage.usd:.6f}{shrink}")
    except StopIteration:
        pass
    finally:
        shutdown()
    spent = run.spent()
    console.print(f"spent [bold]${spent.usd:.6f}[/bold] of ${args.budget_usd} on {spent.calls} calls "
                  f"({spent.output_tokens:,} tokens, {spent.cpu_seconds:.1f} engine-seconds)")
    assert spent.usd <= args.budget_usd, "the budget was exceeded"
    console.print(ledger.verify().summary())
    console.print(f"inspect it: budgetflow ledger show --db {args.db}")


if __name__ == "__main__":
    main()
