"""Quickstart: a hard budget shared by concurrent workers, on the embedded default ledger (SQLite).

Sixteen workers stand in for model calls (the model layer plugs into exactly this reserve → call → commit cycle).
Each call reserves its worst case at gpt-4o-mini's price from LiteLLM's bundled price map, then commits what it
"used". Watch the run stop at the cap — never past it — then audit the ledger.

    python examples/ledger_quickstart.py [--db runs/quickstart/ledger.db] [--budget-usd 0.02]
"""

from __future__ import annotations

import argparse
import random
import threading
from pathlib import Path

from rich.console import Console

from budgetflow import Budget, BudgetExceeded, Ledger, PriceBook

MODEL = "gpt-4o-mini"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="runs/quickstart/ledger.db")
    parser.add_argument("--budget-usd", type=float, default=0.02)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    console = Console()

    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    Path(args.db).unlink(missing_ok=True)
    ledger = Ledger(args.db)
    prices = PriceBook()
    run = ledger.root("quickstart", Budget(usd=args.budget_usd, calls=2000))
    # run → task → agent: each level can carry its own cap; spending below counts on every level above
    tasks = [run.child(f"task-{i}", Budget(usd=args.budget_usd / 2)).child(f"task-{i}/solver") for i in range(3)]
    calls, refused = [0], [0]
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        agent = tasks[seed % len(tasks)]
        while True:
            prompt, max_tokens = rng.randint(200, 2000), 1024
            worst = prices.cost(MODEL, input_tokens=prompt, output_tokens=max_tokens)
            try:
                reservation = agent.reserve(usd=worst, input_tokens=prompt, output_tokens=max_tokens, calls=1)
            except BudgetExceeded:
                with lock:
                    refused[0] += 1
                return  # out of money: this worker stops cleanly
            used = rng.randint(20, max_tokens)
            reservation.commit(usd=prices.cost(MODEL, input_tokens=prompt, output_tokens=used),
                               input_tokens=prompt, output_tokens=used, calls=1)
            with lock:
                calls[0] += 1

    with console.status(f"{args.workers} workers spending a ${args.budget_usd} budget on {MODEL} prices..."):
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    spent = run.spent()
    console.print(f"[bold]{calls[0]}[/bold] metered calls, {refused[0]} refused at the cap; "
                  f"spent [bold]${spent.usd:.6f}[/bold] of ${args.budget_usd} "
                  f"({spent.input_tokens:,} input + {spent.output_tokens:,} output tokens)")
    assert spent.usd <= args.budget_usd, "the budget was exceeded"  # the promise, checked on every run
    report = ledger.verify()
    console.print(("[green]" if report.ok else "[red]") + report.summary())
    console.print(f"inspect it: budgetflow ledger show --db {args.db}")
    ledger.close()


if __name__ == "__main__":
    main()
