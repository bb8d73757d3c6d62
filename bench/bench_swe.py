"""QuixBugs through the SWE graph: how many repo tasks Qwen2.5-Coder-1.5B resolves, and at what spend.

Each task runs `budgetflow.agents._solve` (parallel tool-using trajectories in the sandbox, each iterating on the
failing tests, then the selector) under its own budget on one SQLite ledger. The selected patch is then scored
apart, in a `scoring` account outside every task's budget: applied to the task's repo, and the task's
fail_to_pass + pass_to_pass tests run on the scorer's copy of the test files (so a patch that edits tests gains
nothing). Results are appended per task to bench/results/swe_quixbugs.jsonl (resumable); the summary goes to
swe_quixbugs.json and the patches to swe_quixbugs_predictions.jsonl (SWE-bench format).

    python bench/bench_swe.py --tasks 10 --budget-usd 0.02 [--url http://127.0.0.1:PORT/v1]

With --url it uses a running vLLM server of Qwen2.5-Coder-1.5B instead of starting one.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CPU_HOUR_USD = 0.10  # what bench/sample_cache.py charges for this CPU


def score(task, patch: str, ledger) -> dict:
    """Whether `patch` resolves `task`: fail_to_pass and pass_to_pass all pass on the patched repo."""
    from budgetflow import Budget
    from budgetflow.tasks import RepoTaskError
    from budgetflow.verifiers import RepoTestRunner
    from budgetflow.workspace import apply_patch_files, repo_files, scoring_files

    if not patch.strip():
        return {"resolved": False, "why": "no patch"}
    try:
        files = apply_patch_files(repo_files(task.repo), patch)
    except RepoTaskError as err:  # a patch that does not apply is a result, not a crash
        return {"resolved": False, "why": f"patch does not apply: {str(err)[:200]}"}
    report = RepoTestRunner().run(scoring_files(task, files), task, list(task.fail_to_pass + task.pass_to_pass),
                                  account=ledger.root("scoring", Budget()))
    return {"resolved": report.resolved(task), "why": report.summary(task)[:300]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--budget-usd", type=float, default=0.02, help="per task")
    ap.add_argument("--trajectories", type=int, default=2)
    ap.add_argument("--turns", type=int, default=6, help="model turns per attempt")
    ap.add_argument("--attempts", type=int, default=2, help="attempts per trajectory (later ones see the failures)")
    ap.add_argument("--waves", type=int, default=2)
    ap.add_argument("--turn-tokens", type=int, default=384)
    ap.add_argument("--url", default=None, help="a running vLLM server of qwen2.5-coder-1.5b")
    ap.add_argument("--price", choices=["cpu", "tokens"], default="cpu",
                    help="price the model per engine CPU-second ($0.10/h) or per token ($0.10/M in, $0.40/M out; "
                         "independent of machine load)")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    from budgetflow.llm._server import OFFLINE_ENV

    for k, v in {**OFFLINE_ENV, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}.items():  # nothing phones home
        os.environ.setdefault(k, v)
    from budgetflow import Ledger, PriceBook
    from budgetflow.agents import AgentConfig, solve
    from budgetflow.llm import get_llm, shutdown
    from budgetflow.swe import load_quixbugs
    from budgetflow.tasks import swebench_prediction

    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / "swe_quixbugs.jsonl"
    done = {}
    if raw.exists():
        for line in raw.read_text().splitlines():
            row = json.loads(line)
            if row.get("budget_usd") == args.budget_usd and row.get("price", "cpu") == args.price:
                done[row["instance_id"]] = row
    tasks = load_quixbugs(args.tasks)
    todo = [t for t in tasks if t.instance_id not in done]
    if todo and not args.report_only:
        prices = PriceBook()
        name = f"vllm/qwen2.5-coder-1.5b@{args.url}" if args.url else "local/qwen2.5-coder-1.5b"
        if args.price == "cpu":
            prices.set(name.split("@")[0], cpu_hour=CPU_HOUR_USD)
        else:
            prices.set(name.split("@")[0], input_per_million=0.10, output_per_million=0.40)
        llm = get_llm(name, prices=prices, **({} if args.url else {"max_model_len": 4096}))
        ledger = Ledger(Path(tempfile.mkdtemp()) / "swe-ledger.db")
        cfg = AgentConfig(wave_size=args.trajectories, parallel=args.trajectories, max_waves=args.waves,
                          max_turns=args.turns, attempts=args.attempts, turn_max_tokens=args.turn_tokens,
                          usd_per_cpu_second=CPU_HOUR_USD / 3600)
        try:
            for task in todo:
                t0 = time.monotonic()
                res = solve(task, model=llm, budget=args.budget_usd, ledger=ledger, config=cfg,
                            thread_id=f"bench-{task.instance_id}")
                scored = score(task, res.answer or "", ledger)
                total = res.spend["total"]
                row = {"instance_id": task.instance_id, "budget_usd": args.budget_usd, "price": args.price, "config": cfg.model_dump(
                           include={"wave_size", "max_waves", "max_turns", "attempts", "turn_max_tokens"}),
                       "reason": res.reason,
                       "selection": res.selection, "resolved": scored["resolved"], "why": scored["why"],
                       "usd": total.usd, "output_tokens": total.output_tokens, "input_tokens": total.input_tokens,
                       "engine_cpu_s": total.cpu_seconds, "calls": total.calls, "candidates": len(res.candidates),
                       "seconds": time.monotonic() - t0,
                       "prediction": swebench_prediction(task.instance_id, "qwen2.5-coder-1.5b", res.answer)}
                with raw.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                done[task.instance_id] = row
                print(f"{task.instance_id:<40} resolved={row['resolved']!s:<5} {row['reason']:<9} "
                      f"${row['usd']:.4f} out={row['output_tokens']} ({row['seconds']:.0f}s)", flush=True)
        finally:
            ledger.close()
            shutdown()
    rows = [done[t.instance_id] for t in tasks if t.instance_id in done]
    resolved = sum(r["resolved"] for r in rows)
    summary = {"bench": "swe_quixbugs", "tasks": len(rows), "resolved": resolved,
               "budget_usd_per_task": args.budget_usd, "price": args.price, "usd": sum(r["usd"] for r in rows),
               "output_tokens": sum(r["output_tokens"] for r in rows),
               "mean_usd_per_task": sum(r["usd"] for r in rows) / max(1, len(rows)),
               "stopped_by_budget": sum(r["reason"] == "budget" for r in rows),
               "resolved_ids": [r["instance_id"] for r in rows if r["resolved"]]}
    (RESULTS / "swe_quixbugs.json").write_text(json.dumps(summary, indent=2))
    with (RESULTS / "swe_quixbugs_predictions.jsonl").open("w") as fh:
        for r in rows:
            fh.write(json.dumps(r["prediction"]) + "\n")
    print(f"\nQuixBugs via the SWE graph: {resolved}/{len(rows)} resolved, ${summary['usd']:.4f} in all "
          f"({summary['stopped_by_budget']} stopped by the budget)")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
