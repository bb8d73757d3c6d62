"""Resolve an issue in a repository with the SWE graph: tool-using trajectories in parallel, each iterating on the
failing tests, then the selector picks a patch; writes a SWE-bench predictions.jsonl line.

Without --repo it builds a tiny git repository with an obvious bug in a temporary directory. The repository is never
changed: trajectories edit in-memory copies, and code runs only in the sandbox.

    python examples/solve_swe.py [--model local/qwen2.5-coder-1.5b] [--budget-usd 0.05] [--out runs/solve-swe]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from rich.console import Console

from budgetflow import Ledger, PriceBook, solve
from budgetflow.agents import AgentConfig, write_predictions
from budgetflow.llm import shutdown
from budgetflow.tasks import RepoTask

CALC = 'def add(a, b):\n    """Return the sum of a and b."""\n    return a - b\n'
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def tiny_repo(root: Path) -> RepoTask:
    (root / "calc.py").write_text(CALC)
    (root / "test_calc.py").write_text(TESTS)
    for cmd in (["init", "-q"], ["add", "-A"], ["-c", "user.name=demo", "-c", "user.email=demo@example.invalid",
                                                "commit", "-q", "-m", "buggy add"]):
        subprocess.run(["git", "-C", str(root), *cmd], check=True)
    return RepoTask(instance_id="demo__calc-1", project="demo", repo=str(root),
                    issue="calc.add(2, 3) returns -1 instead of 5.", fail_to_pass=("test_calc.py::test_add",),
                    hidden_tests=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="local/qwen2.5-coder-1.5b")
    parser.add_argument("--budget-usd", type=float, default=0.05)
    parser.add_argument("--cpu-hour-usd", type=float, default=0.36)
    parser.add_argument("--trajectories", type=int, default=2)
    parser.add_argument("--out", default="runs/solve-swe")
    args = parser.parse_args()
    console = Console()
    prices = PriceBook()
    prices.set(args.model.split("@")[0], cpu_hour=args.cpu_hour_usd)
    out = Path(args.out)
    ledger = Ledger(out / "ledger.db")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            task = tiny_repo(Path(tmp))
            with console.status(f"{args.trajectories} trajectories of {args.model} on {task.instance_id}..."):
                res = solve(task, model=args.model, budget=args.budget_usd, prices=prices, ledger=ledger,
                            config=AgentConfig(wave_size=args.trajectories, parallel=args.trajectories,
                                               max_waves=1, max_turns=4, attempts=2, turn_max_tokens=256))
        console.print(f"stopped because [bold]{res.reason}[/bold]; selected {res.selected.id if res.selected else None}"
                      f" by {res.selection}")
        for note in res.notes:
            console.print(f"  {note}")
        console.print(res.patch or "(no patch)")
        for name, spent in res.accounts.items():
            console.print(f"  {name:<18} ${spent.usd:.6f}  {spent.calls} calls  {spent.cpu_seconds:.1f} CPU-s")
        path = write_predictions([res], out / "predictions.jsonl")
        console.print(f"wrote {path}; total ${res.spend['total'].usd:.6f} of ${args.budget_usd}")
        assert res.spend["total"].usd <= args.budget_usd, "the budget was exceeded"
    finally:
        ledger.close()
        shutdown()


if __name__ == "__main__":
    main()
