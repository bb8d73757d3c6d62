"""GSM8K: accuracy vs thinking-token budget, budget forcing against unconstrained chain of thought (issue 15).

Per problem (greedy, one sample, the solvers' PROMPT):
- forced@B: the reasoning capped at B tokens and stopped at "The answer is"; if it ran out, the cue is appended and
  the answer generated under its own cap of 12 tokens (budgetflow.llm.budget_forced, as `--strategy think`);
- cot: one chain of thought with max_tokens=--cot-max-tokens, cut at its first final answer; its cost both as
  charged (it rambles on after the answer) and up to the answer (an ideal stop rule);
- cot-cut@B: the same chain of thought read after its first B tokens (greedy: exactly what max_tokens=B would give),
  answered from there with no forcing (its stated answer if it got that far, else its last number) — what capping
  without forcing buys.
Each method spends on a ledger account of its own (forced@B: capped at B + 12 output tokens).

    python bench/bench_thinking_gsm8k.py --problems 100 --url http://127.0.0.1:PORT/v1   # Qwen2.5-Coder-1.5B
    python bench/bench_thinking_gsm8k.py --model smollm2-135m --problems 3              # a quick check

Rows are appended per problem to bench/results/thinking_gsm8k[_MODEL].jsonl (resumable); the summary goes to
bench/results/thinking_gsm8k[_MODEL].json and .png (no suffix for Qwen2.5-Coder-1.5B, the benchmark's model).
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

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # provenance and subsets, and the checkout's budgetflow

from provenance import provenance  # noqa: E402
from subsets import fixed_subset, wilson  # noqa: E402

RESULTS = HERE / "results"
MAIN_MODEL = "qwen2.5-coder-1.5b"
ANSWER_CAP = 12


def cot_prefix(completion, tokens: int) -> tuple[str, int]:
    """The completion's text after its first `tokens` tokens, and how many tokens that is."""
    toks = completion.logprobs or []
    return "".join(t.token for t in toks[:tokens]), min(tokens, len(toks))


def run_problem(llm, ledger, task, budgets: list[int], cot_max_tokens: int) -> dict:
    from budgetflow import Budget
    from budgetflow.llm import budget_forced
    from budgetflow.search._steps import PROMPT
    from budgetflow.verifiers import cut_at_answer, extract_answer

    prompt = PROMPT.format(question=task.question)
    row: dict = {"task_id": task.id, "answer": task.answer, "forced": {}, "cot_cut": {}}
    t0 = time.monotonic()
    for b in budgets:
        acct = ledger.root(f"{task.id}/forced@{b}", Budget(output_tokens=b + ANSWER_CAP))
        out = budget_forced(llm, prompt, account=acct, thinking_budget=b, answer_max_tokens=ANSWER_CAP)
        s = out.samples[0]
        got = extract_answer(s.text)
        row["forced"][str(b)] = {"answer": got, "correct": got == task.answer, "forced": s.forced,
                                 "thought_tokens": s.thought_tokens, "answer_tokens": s.answer_tokens,
                                 "output_tokens": acct.spent().output_tokens}
    acct = ledger.root(f"{task.id}/cot", Budget(output_tokens=cot_max_tokens))
    gen = llm.generate(prompt, account=acct, max_tokens=cot_max_tokens, temperature=0.0, logprobs=0)
    c = gen.completions[0]
    cut = cut_at_answer(c.text)
    got = extract_answer(cut)
    to_answer = len(c.logprobs or [])
    text = ""
    for i, tok in enumerate(c.logprobs or [], 1):
        text += tok.token
        if len(text) >= len(cut):
            to_answer = i
            break
    row["cot"] = {"answer": got, "correct": got == task.answer, "output_tokens": acct.spent().output_tokens,
                  "tokens_to_answer": to_answer, "finish_reason": c.finish_reason}
    for b in budgets:
        prefix, used = cot_prefix(c, b)
        got = extract_answer(cut_at_answer(prefix))
        row["cot_cut"][str(b)] = {"answer": got, "correct": got == task.answer,
                                  "output_tokens": min(used, to_answer), "stated": "answer is" in prefix.lower()}
    row["seconds"] = time.monotonic() - t0
    return row


def _stats(points: list[dict], key: str = "output_tokens") -> dict:
    n = len(points)
    right = sum(p["correct"] for p in points)
    lo, hi = wilson(right, n)
    return {"accuracy": right / n, "ci95": [lo, hi], "mean_output_tokens": sum(p[key] for p in points) / n}


def summarise(rows: list[dict], budgets: list[int], model: str) -> dict:
    summary: dict = {"benchmark": "thinking_gsm8k", "model": model, "problems": len(rows), "budgets": budgets,
                     "answer_cap": ANSWER_CAP, "methods": {}}
    if not rows:
        return summary
    for b in budgets:
        pts = [r["forced"][str(b)] for r in rows]
        summary["methods"][f"forced@{b}"] = {**_stats(pts), "forced_share": sum(p["forced"] for p in pts) / len(pts)}
        cut = [r["cot_cut"][str(b)] for r in rows]
        summary["methods"][f"cot-cut@{b}"] = {**_stats(cut), "stated_share": sum(p["stated"] for p in cut) / len(cut)}
    cot = [r["cot"] for r in rows]
    summary["methods"]["cot"] = {**_stats(cot), "mean_tokens_to_answer": sum(p["tokens_to_answer"] for p in cot)
                                 / len(cot)}
    # within this run: each budget's accuracy and tokens as a share of the unconstrained chain of thought's
    base = summary["methods"]["cot"]
    for b in budgets:
        m = summary["methods"][f"forced@{b}"]
        m["accuracy_vs_cot"] = m["accuracy"] / base["accuracy"] if base["accuracy"] else None
        m["tokens_vs_cot_to_answer"] = (m["mean_output_tokens"] / base["mean_tokens_to_answer"]
                                        if base["mean_tokens_to_answer"] else None)
    return summary


def plot(summary: dict, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)
        return
    methods, budgets = summary["methods"], summary["budgets"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for prefix, label in (("forced", "budget forcing"), ("cot-cut", "CoT cut at B, no forcing")):
        pts = [methods[f"{prefix}@{b}"] for b in budgets]
        xs, ys = [p["mean_output_tokens"] for p in pts], [p["accuracy"] for p in pts]
        errs = [[y - p["ci95"][0] for y, p in zip(ys, pts)], [p["ci95"][1] - y for y, p in zip(ys, pts)]]
        ax.errorbar(xs, ys, yerr=errs, fmt="o-", capsize=3, label=label)
        for x, y, b in zip(xs, ys, budgets):
            ax.annotate(str(b), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    cot = methods["cot"]
    ax.scatter([cot["mean_tokens_to_answer"]], [cot["accuracy"]], marker="s", color="k",
               label="unconstrained CoT (tokens to answer)")
    ax.set_xlabel("mean output tokens per problem")
    ax.set_ylabel("accuracy")
    ax.set_title(f"GSM8K ({summary['problems']} problems), {summary['model']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=100, help="a fixed random subset of GSM8K-100 of this size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budgets", default="32,64,128,256", help="thinking-token budgets, comma-separated")
    ap.add_argument("--cot-max-tokens", type=int, default=512)
    ap.add_argument("--model", default=MAIN_MODEL, help="a local model name (budgetflow models list)")
    ap.add_argument("--url", default=None, help="a running vLLM server of --model (its /v1 URL)")
    ap.add_argument("--workers", type=int, default=4, help="problems in flight (the engine batches them)")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    budgets = sorted(int(b) for b in args.budgets.split(","))
    from budgetflow.llm._server import OFFLINE_ENV

    for k, v in {**OFFLINE_ENV, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}.items():  # nothing phones home
        os.environ.setdefault(k, v)
    from budgetflow import Ledger, PriceBook
    from budgetflow.llm import get_llm, shutdown
    from budgetflow.tasks import load_gsm8k

    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "thinking_gsm8k" + ("" if args.model == MAIN_MODEL else f"_{args.model}")
    raw = RESULTS / f"{stem}.jsonl"
    config = {"budgets": budgets, "cot_max_tokens": args.cot_max_tokens, "answer_cap": ANSWER_CAP}
    done: dict[str, dict] = {}
    if raw.exists():
        for line in raw.read_text().splitlines():
            row = json.loads(line)
            if row.get("config") == config:
                done[row["task_id"]] = row
    tasks = fixed_subset(load_gsm8k(), args.problems, args.seed)
    todo = [t for t in tasks if t.id not in done]
    if todo and not args.report_only:
        prices = PriceBook()
        name = f"vllm/{args.model}@{args.url}" if args.url else f"local/{args.model}"
        prices.set(f"vllm/{args.model}" if args.url else name, cpu_hour=0.10)
        llm = get_llm(name, prices=prices, **({} if args.url else {"max_model_len": 2048}))
        ledger = Ledger(Path(tempfile.mkdtemp()) / "thinking-ledger.db")

        def one(task):
            row = run_problem(llm, ledger, task, budgets, args.cot_max_tokens)
            row["config"] = config
            with raw.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            marks = " ".join(f"{b}:{'+' if row['forced'][str(b)]['correct'] else '-'}" for b in budgets)
            print(f"{task.id}: forced {marks} cot:{'+' if row['cot']['correct'] else '-'} ({row['seconds']:.0f}s)",
                  flush=True)
            return row

        try:
            with ThreadPoolExecutor(args.workers) as pool:
                for row in pool.map(one, todo):
                    done[row["task_id"]] = row
        finally:
            ledger.close()
            shutdown()
    rows = [done[t.id] for t in tasks if t.id in done]
    summary = {**summarise(rows, budgets, args.model), "seed": args.seed, "config": config, **provenance()}
    print(f"\nGSM8K: {summary['problems']} problems, {args.model}, greedy, forced answers capped at {ANSWER_CAP}")
    print(f"{'method':<14}{'accuracy':>10}{'95% CI':>16}{'out tokens':>12}")
    for name, m in summary["methods"].items():
        ci = "[{:.2f}, {:.2f}]".format(*m["ci95"])
        print(f"{name:<14}{m['accuracy']:>10.2f}{ci:>16}{m['mean_output_tokens']:>12.1f}")
    (RESULTS / f"{stem}.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({"bench": "thinking_gsm8k", "model": args.model, "problems": summary["problems"],
                      "accuracy": {k: round(m["accuracy"], 3) for k, m in summary["methods"].items()}}))
    if rows:
        plot(summary, RESULTS / f"{stem}.png")


if __name__ == "__main__":
    main()
