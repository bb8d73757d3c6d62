"""A budget-audited batch run from Python: the same thing `budgetflow run` does.

    python examples/batch_run.py [--model local/qwen2.5-coder-1.5b] [--budget-usd 0.05] [--limit 20] [--out runs/demo]

Every task runs on its own ledger account under the run's cap; results.jsonl gets a line the moment a task finishes;
kill it at any point and run it again with --resume to finish it (nothing lost, nothing charged twice). A local model
without a price is charged $0.10 per CPU-hour of engine time (pass --price-cpu-hour to change that).
"""

from __future__ import annotations

import argparse

from rich.console import Console

from budgetflow.llm import shutdown
from budgetflow.runs import prepare_run, run_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", default="humaneval")
    parser.add_argument("--model", default="local/qwen2.5-coder-1.5b")
    parser.add_argument("--budget-usd", type=float, default=0.05)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--price-cpu-hour", type=float, default=None)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    console = Console(stderr=True)

    if args.resume:
        config, tasks, notes = prepare_run(out=args.out, resume=True)
    else:
        config, tasks, notes = prepare_run(source=args.source, model=args.model, budget_usd=args.budget_usd,
                                           limit=args.limit, out=args.out, price_cpu_hour=args.price_cpu_hour)
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    try:
        summary = run_batch(config, tasks, resume=args.resume, console=console)
    finally:
        shutdown()  # stop the vLLM server a local model started
    console.print(f"{summary.solved}/{summary.scored} solved (hidden tests), spent ${summary.spent_usd:.6f} of "
                  f"${summary.cap_usd}, {summary.verify}")
    console.print(f"report: {summary.report}")


if __name__ == "__main__":
    main()
