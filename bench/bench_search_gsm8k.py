"""GSM8K-100 subset: majority vote over full samples vs beam search vs MCTS vs A*-decoding, at equal output-token
budgets per problem (each strategy gets its own ledger account capped at --tokens output tokens).

    python bench/bench_search_gsm8k.py --problems 20 --tokens 768 [--url http://127.0.0.1:PORT/v1]

With --url it uses a running vLLM server of Qwen2.5-Coder-1.5B (e.g. the sample-cache generator's) instead of
starting one. Results are appended per problem to bench/results/search_gsm8k.jsonl (resumable), and the summary goes
to bench/results/search_gsm8k.json and .png.
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

RESULTS = Path(__file__).resolve().parent / "results"


def tokens_to_answer(completion) -> tuple[str, int]:
    """The completion cut after its first final answer, and how many of its tokens that took: what sampling would
    cost with an ideal stop rule (vLLM cannot stop on "The answer is <number>"), the strongest baseline."""
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


def majority_curve(llm, task, account, max_samples: int, max_tokens: int) -> dict:
    """Full samples in waves of 4 up to max_samples; after each k the vote over answers cut at their first final
    answer, with two token costs: as charged (the model rambles on after its answer until max_tokens) and up to
    each answer (an ideal stop rule)."""
    from budgetflow.budget import BudgetExceeded
    from budgetflow.search._steps import PROMPT
    from budgetflow.verifiers import extract_answer, majority_vote

    prompt = PROMPT.format(question=task.question)
    answers: list[str | None] = []
    charged: list[float] = []
    trimmed: list[int] = []
    while len(answers) < max_samples:
        try:
            gen = llm.generate(prompt, account=account, n=4, max_tokens=max_tokens, temperature=0.8, logprobs=0)
        except BudgetExceeded:
            break
        per = gen.usage.output_tokens / max(1, len(gen.completions))
        for c in gen.completions:
            cut, used = tokens_to_answer(c)
            answers.append(extract_answer(cut))
            charged.append(per)
            trimmed.append(used)
    curve = []
    for k in range(1, len(answers) + 1):
        vote = majority_vote(answers[:k])
        curve.append({"k": k, "answer": vote.answer, "correct": vote.answer == task.answer,
                      "output_tokens": sum(charged[:k]), "tokens_to_answer": sum(trimmed[:k])})
    return {"curve": curve, "output_tokens": account.spent().output_tokens}


def run_problem(llm, ledger, task, budget_tokens: int) -> dict:
    from budgetflow import Budget
    from budgetflow.search import StepConfig, astar, beam_search, mcts

    cfg = StepConfig(step_max_tokens=64, max_depth=12, max_children=4, max_expansions=40)
    out: dict = {"task_id": task.id, "answer": task.answer}

    def acct(name: str):
        return ledger.root(f"{task.id}/{name}", Budget(output_tokens=budget_tokens))

    t0 = time.monotonic()
    # the baseline's curve is not capped by the strategies' budget: it is read at every k
    majority = ledger.root(f"{task.id}/majority", Budget(output_tokens=8 * 256))
    out["majority"] = majority_curve(llm, task, majority, 8, 256)
    for name, fn in (("beam", lambda a: beam_search(llm, task, account=a, width=3, cfg=cfg)),
                     ("mcts", lambda a: mcts(llm, task, account=a, iterations=40, want_answers=3, cfg=cfg)),
                     ("astar", lambda a: astar(llm, task, account=a, want_answers=1, cfg=cfg))):
        res = fn(acct(name))
        out[name] = res.model_dump(exclude={"solution"})
    out["seconds"] = time.monotonic() - t0
    return out


def summarise(rows: list[dict], budget_tokens: int) -> dict:
    n = len(rows)
    summary: dict = {"problems": n, "budget_output_tokens_per_problem": budget_tokens, "strategies": {}}
    if not n:
        return summary
    for k in (1, 2, 4, 8):
        if any(len(r["majority"]["curve"]) < k for r in rows):
            continue
        at_k = [r["majority"]["curve"][k - 1] for r in rows]
        summary["strategies"][f"majority@{k}"] = {
            "accuracy": sum(p["correct"] for p in at_k) / n,
            "mean_output_tokens": sum(p["output_tokens"] for p in at_k) / n,
            "mean_tokens_to_answer": sum(p.get("tokens_to_answer", p["output_tokens"]) for p in at_k) / n}
    for name in ("beam", "mcts", "astar"):
        summary["strategies"][name] = {
            "accuracy": sum(r[name]["correct"] for r in rows) / n,
            "mean_output_tokens": sum(r[name]["output_tokens"] for r in rows) / n,
            "mean_expansions": sum(r[name]["expansions"] for r in rows) / n,
            "stopped_by_budget": sum(r[name]["reason"] == "budget" for r in rows)}
        # the target: fewer tokens than sampling + vote for the same accuracy
        tree = summary["strategies"][name]
        as_good = [s["mean_tokens_to_answer"] for k, s in summary["strategies"].items()
                   if k.startswith("majority@") and s["accuracy"] >= tree["accuracy"]]
        tree["majority_tokens_for_same_accuracy"] = min(as_good) if as_good else None
        tree["token_ratio_vs_majority"] = (min(as_good) / tree["mean_output_tokens"]
                                           if as_good and tree["mean_output_tokens"] else None)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--tokens", type=int, default=768, help="output-token budget per problem and strategy")
    ap.add_argument("--url", default=None, help="a running vLLM server of qwen2.5-coder-1.5b")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    from budgetflow.llm._server import OFFLINE_ENV

    for k, v in {**OFFLINE_ENV, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}.items():  # nothing phones home
        os.environ.setdefault(k, v)
    from budgetflow import Ledger, PriceBook
    from budgetflow.llm import get_llm, shutdown
    from budgetflow.tasks import load_gsm8k

    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / "search_gsm8k.jsonl"
    done = {}
    if raw.exists():
        for line in raw.read_text().splitlines():
            row = json.loads(line)
            if row.get("budget") == args.tokens:
                done[row["task_id"]] = row
    tasks = load_gsm8k(args.problems)
    todo = [t for t in tasks if t.id not in done]
    if todo and not args.report_only:
        prices = PriceBook()
        name = f"vllm/qwen2.5-coder-1.5b@{args.url}" if args.url else "local/qwen2.5-coder-1.5b"
        prices.set("vllm/qwen2.5-coder-1.5b" if args.url else name, cpu_hour=0.10)
        llm = get_llm(name, prices=prices, **({} if args.url else {"max_model_len": 2048}))
        ledger = Ledger(Path(tempfile.mkdtemp()) / "gsm8k-ledger.db")
        tp = getattr(llm, "throughput", None)
        if tp is not None and tp.calibrated:  # how much one engine step costs per sequence at n=1 vs n=8
            (RESULTS / "qwen_calibration.json").write_text(json.dumps(
                {"step_1_s": tp.step_1, "step_8_s": tp.step_8, "prefill_per_token_s": tp.prefill_per_token,
                 "per_sequence_cost_ratio_n1_vs_n8": tp.step_1 / (tp.step_8 / 8)}, indent=2))

        def one(task):
            row = run_problem(llm, ledger, task, args.tokens)
            row["budget"] = args.tokens
            with raw.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{task.id}: majority={row['majority']['curve'][-1]['correct'] if row['majority']['curve'] else None}"
                  f" beam={row['beam']['correct']} mcts={row['mcts']['correct']} astar={row['astar']['correct']}"
                  f" ({row['seconds']:.0f}s)", flush=True)
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
    print(f"\nGSM8K: {summary['problems']} problems, {args.tokens} output tokens per problem and strategy")
    print(f"{'strategy':<14}{'accuracy':>10}{'out tokens':>12}{'to answer':>11}{'expansions':>12}{'budget-stop':>12}")
    for name, s in summary["strategies"].items():
        print(f"{name:<14}{s['accuracy']:>10.2f}{s['mean_output_tokens']:>12.0f}"
              f"{s.get('mean_tokens_to_answer', s['mean_output_tokens']):>11.0f}{s.get('mean_expansions', 0):>12.1f}"
              f"{s.get('stopped_by_budget', 0):>12}")
    (RESULTS / "search_gsm8k.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({"bench": "search_gsm8k", **summary}))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        maj = [(s["mean_tokens_to_answer"], s["accuracy"]) for name, s in summary["strategies"].items()
               if name.startswith("majority@")]
        if maj:
            ax.plot(*zip(*maj), "o-", label="majority@k (tokens to answer)")
        for name in ("beam", "mcts", "astar"):
            if name in summary["strategies"]:
                s = summary["strategies"][name]
                ax.scatter(s["mean_output_tokens"], s["accuracy"], label=name, marker="s")
        ax.set_xlabel("mean output tokens per problem")
        ax.set_ylabel("accuracy")
        ax.set_title(f"GSM8K ({summary['problems']} problems), Qwen2.5-Coder-1.5B")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(RESULTS / "search_gsm8k.png", dpi=120)
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)


if __name__ == "__main__":
    main()
