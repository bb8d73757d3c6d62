"""GSM8K-100: majority vote over full samples vs beam search vs MCTS vs A*-decoding, at equal output-token budgets
per problem (each method gets its own ledger account capped at --tokens output tokens), on a fixed random subset,
with Wilson 95% intervals.

    python bench/bench_search_gsm8k.py --subset 20 --seed 0 --tokens 768 [--url http://127.0.0.1:PORT/v1]

With --url it uses a running vLLM server of Qwen2.5-Coder-1.5B (e.g. the sample-cache generator's) instead of
starting one (the local one starts with prefix caching on). Every finished problem is appended to
bench/results/search_gsm8k.jsonl, keyed by problem and budget, so an interrupted run resumes; the summary goes to
bench/results/search_gsm8k.json (and .png).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402
from subsets import fixed_subset, wilson  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("majority", "beam", "mcts", "astar")


def tokens_to_answer(completion) -> tuple[str, int]:
    """The completion cut after its first final answer, and how many of its tokens that took: what sampling would
    cost with an ideal stop rule (vLLM cannot stop on "The answer is <number>")."""
    from budgetflow.verifiers import cut_at_answer

    cut = cut_at_answer(completion.text)
    if not completion.logprobs:
        return cut, 0
    text = ""
    for i, tok in enumerate(completion.logprobs, 1):
        text += tok.token
        if len(text) >= len(cut):
            return cut, i
    return cut, len(completion.logprobs)


def majority_curve(llm, task, account, sample_tokens: int) -> dict:
    """Full samples in waves of up to 4 while whole samples fit the account; the vote after each k, with two token
    costs: as charged (the model rambles on after its answer until max_tokens) and up to each answer (an ideal
    stop rule)."""
    from budgetflow.budget import BudgetExceeded
    from budgetflow.search._steps import PROMPT  # the step searches' prompt: one prompt for every method
    from budgetflow.verifiers import extract_answer, majority_vote

    prompt = PROMPT.format(question=task.question)
    answers: list[str | None] = []
    charged: list[float] = []
    trimmed: list[int] = []
    while True:
        left = account.headroom_units().get("output_tokens") or 0
        n = min(4, left // sample_tokens)
        if n < 1:
            break
        try:
            gen = llm.generate(prompt, account=account, n=n, max_tokens=sample_tokens, temperature=0.8, logprobs=0)
        except BudgetExceeded:
            break
        for c in gen.completions:
            cut, used = tokens_to_answer(c)
            answers.append(extract_answer(cut))
            charged.append(len(c.logprobs or []))
            trimmed.append(used)
    curve = []
    for k in range(1, len(answers) + 1):
        vote = majority_vote(answers[:k])
        curve.append({"k": k, "answer": vote.answer, "correct": vote.answer == task.answer,
                      "confidence": vote.share, "output_tokens": sum(charged[:k]),
                      "tokens_to_answer": sum(trimmed[:k])})
    return {"curve": curve}


def run_problem(llm, ledger, task, budget_tokens: int, methods: tuple[str, ...]) -> dict:
    from budgetflow import Budget
    from budgetflow.search import StepConfig, astar, beam_search, mcts

    cfg = StepConfig(step_max_tokens=64, max_depth=16, max_children=4, max_expansions=40, rollout_max_tokens=256)
    out: dict = {"task_id": task.id, "answer": task.answer, "budget": budget_tokens, "methods": {}}
    searches = {"beam": lambda a: beam_search(llm, task, account=a, width=3, cfg=cfg),
                "mcts": lambda a: mcts(llm, task, account=a, iterations=40, want_answers=16, rollouts=2, cfg=cfg),
                "astar": lambda a: astar(llm, task, account=a, want_answers=1, cfg=cfg)}
    for name in methods:
        account = ledger.root(f"{task.id}/{name}", Budget(output_tokens=budget_tokens))
        t0 = time.monotonic()
        if name == "majority":
            curve = majority_curve(llm, task, account, 256)["curve"]
            last = curve[-1] if curve else {}
            row = {"answer": last.get("answer"), "confidence": last.get("confidence"), "curve": curve,
                   "reason": "budget", "expansions": 0, "samples": len(curve)}
        else:
            res = searches[name](account)
            row = {"answer": res.answer, "confidence": res.confidence, "reason": res.reason,
                   "expansions": res.expansions, "samples": res.samples, **res.details}
        row.update(correct=row["answer"] == task.answer, seconds=time.monotonic() - t0,
                   output_tokens=account.spent().output_tokens, calls=account.spent().calls)
        out["methods"][name] = row
    return out


def _rate(hits: int, n: int) -> dict:
    low, high = wilson(hits, n)
    return {"accuracy": hits / n if n else 0.0, "correct": hits, "ci95": [round(low, 3), round(high, 3)]}


def summarise(rows: list[dict], budget_tokens: int) -> dict:
    n = len(rows)
    summary: dict = {"problems": n, "budget_output_tokens_per_problem": budget_tokens, "methods": {}}
    if not n:
        return summary
    for name in METHODS:
        have = [r["methods"][name] for r in rows if name in r["methods"]]
        if len(have) < n:
            continue
        summary["methods"][name] = {
            **_rate(sum(m["correct"] for m in have), n),
            "mean_output_tokens": sum(m["output_tokens"] for m in have) / n,
            "mean_seconds": sum(m["seconds"] for m in have) / n,
            "mean_calls": sum(m["calls"] for m in have) / n,
            "answered": sum(m["answer"] is not None for m in have),
            "finished_a_path": sum(m.get("finished_paths", m.get("samples", 0)) > 0 for m in have),
            "stopped_by_budget": sum(m["reason"] == "budget" for m in have)}
    # majority@k on the same problems: the vote after k samples, tokens as charged and to each answer
    for k in (1, 2, 4, 8):
        curves = [r["methods"].get("majority", {}).get("curve", []) for r in rows]
        if any(len(c) < k for c in curves):
            continue
        at_k = [c[k - 1] for c in curves]
        summary["methods"][f"majority@{k}"] = {
            **_rate(sum(p["correct"] for p in at_k), n),
            "mean_output_tokens": sum(p["output_tokens"] for p in at_k) / n,
            "mean_tokens_to_answer": sum(p["tokens_to_answer"] for p in at_k) / n}
    return summary


def print_table(summary: dict) -> None:
    print(f"\nGSM8K: {summary['problems']} problems, {summary['budget_output_tokens_per_problem']} output tokens "
          "per problem and method (95% Wilson intervals)")
    print(f"{'method':<13}{'accuracy':>9}{'95% CI':>15}{'out tokens':>11}{'to answer':>10}{'calls':>7}"
          f"{'seconds':>9}{'finished':>9}{'budget-stop':>12}")
    for name, s in summary["methods"].items():
        ci = f"[{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}]"
        print(f"{name:<13}{s['accuracy']:>9.2f}{ci:>15}{s['mean_output_tokens']:>11.0f}"
              f"{s.get('mean_tokens_to_answer', s['mean_output_tokens']):>10.0f}{s.get('mean_calls', 0):>7.1f}"
              f"{s.get('mean_seconds', 0):>9.1f}{s.get('finished_a_path', ''):>9}{s.get('stopped_by_budget', ''):>12}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subset", type=int, default=None, help="problems drawn by --seed (default: all 100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokens", type=int, default=768, help="output-token budget per problem and method")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--model", default="qwen2.5-coder-1.5b", help="a local model (smollm2-135m: a quick check)")
    ap.add_argument("--url", default=None, help="a running vLLM server of --model")
    ap.add_argument("--workers", type=int, default=2, help="problems in flight (the engine batches their calls)")
    ap.add_argument("--out", type=Path, default=RESULTS / "search_gsm8k.jsonl")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    methods = tuple(m for m in args.methods.split(",") if m)
    from budgetflow.llm._server import OFFLINE_ENV

    for k, v in {**OFFLINE_ENV, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}.items():  # nothing phones home
        os.environ.setdefault(k, v)
    from budgetflow import Ledger, PriceBook
    from budgetflow.llm import get_llm, shutdown
    from budgetflow.tasks import load_gsm8k

    args.out.parent.mkdir(parents=True, exist_ok=True)
    done: dict[str, dict] = {}
    if args.out.exists():  # resume: problems already run at this budget with every asked method
        for line in args.out.read_text().splitlines():
            row = json.loads(line)
            same_run = (row.get("budget"), row.get("model")) == (args.tokens, args.model)
            if same_run and set(methods) <= set(row["methods"]):
                done[row["task_id"]] = row
    tasks = fixed_subset(load_gsm8k(), args.subset, args.seed)
    todo = [t for t in tasks if t.id not in done]
    print(f"{len(tasks)} problems (seed {args.seed}), {len(tasks) - len(todo)} already done", flush=True)
    if todo and not args.report_only:
        prices = PriceBook()
        name = f"vllm/{args.model}@{args.url}" if args.url else f"local/{args.model}"
        prices.set(f"vllm/{args.model}" if args.url else name, cpu_hour=0.10)
        llm = get_llm(name, prices=prices, **({} if args.url else {"max_model_len": 2048}))
        ledger = Ledger(Path(tempfile.mkdtemp()) / "gsm8k-ledger.db")

        def one(task):
            row = {**run_problem(llm, ledger, task, args.tokens, methods), "model": args.model}
            with args.out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            marks = " ".join(f"{m}={'Y' if r['correct'] else 'n'}({r['output_tokens']}t,{r['seconds']:.0f}s)"
                             for m, r in row["methods"].items())
            print(f"{task.id}: {marks}", flush=True)
            return row

        try:
            with ThreadPoolExecutor(args.workers) as pool:
                for row in pool.map(one, todo):
                    done[row["task_id"]] = row
        finally:
            ledger.close()
            shutdown()
    rows = [done[t.id] for t in tasks if t.id in done]
    summary = summarise(rows, args.tokens)
    summary.update(subset=args.subset, seed=args.seed, model=args.model, provenance=provenance())
    print_table(summary)
    (args.out.with_suffix(".json")).write_text(json.dumps(summary, indent=2))
    print(json.dumps({"bench": "search_gsm8k", **summary}))
    plot(summary, args.out.with_suffix(".png"))


def plot(summary: dict, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, s in summary["methods"].items():
        low, high = s["ci95"]
        ax.errorbar(s["mean_output_tokens"], s["accuracy"], yerr=[[s["accuracy"] - low], [high - s["accuracy"]]],
                    fmt="o" if name.startswith("majority") else "s", capsize=3, label=name)
    ax.set_xlabel("mean output tokens per problem (charged)")
    ax.set_ylabel("accuracy (95% Wilson interval)")
    ax.set_title(f"GSM8K ({summary['problems']} problems), {summary['model']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
