"""HumanEval: solved (hidden tests) against spend for fixed best-of-N (N = 1, 2, 4, 8), early-stop sampling and
cross-task allocation, all replayed from the same sample cache (bench/sample_cache.py) and charged on a real SQLite
ledger as if they had generated the samples (engine-seconds at the cache's $/cpu-hour) plus their sandbox runs.
Then SmolLM2-135M sampled k times vs Qwen2.5-Coder-1.5B sampled once at equal CPU-seconds.

    python bench/bench_search.py            # uses every task with a full pool in the cache

Selection only ever sees visible tests (docstring examples); the hidden tests (`check`) score the selected
candidate in a separate scoring account that is not part of any strategy's spend.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from sample_cache import (
    CPU_HOUR_USD,
    ReplayLLM,
    SampleCache,
    SamplingParams,
    price_book,
)

RESULTS = Path(__file__).resolve().parent / "results"
QWEN, SMOL = "local/qwen2.5-coder-1.5b", "local/smollm2-135m"


class Bench:
    def __init__(self, tasks, ledger, sandbox, pool: int):
        from budgetflow.verifiers import UnitTestVerifier

        self.tasks = tasks
        self.ledger = ledger
        self.pool = pool
        usd_cpu_s = CPU_HOUR_USD[QWEN] / 3600  # sandbox CPU costs what engine CPU costs
        self.verifier = UnitTestVerifier(sandbox, usd_per_cpu_second=usd_cpu_s)
        self.scorer = UnitTestVerifier(sandbox, per_test_timeout_s=10.0)
        from budgetflow import Budget

        self.scoring = ledger.root("scoring", Budget())  # hidden tests: reports only, never part of a strategy's spend
        self._hidden: dict[tuple[str, str], bool] = {}
        self._n = 0

    def hidden(self, task, text: str | None) -> bool:
        from budgetflow.verifiers import passes_hidden_tests

        if text is None:
            return False
        key = (task.id, text)
        if key not in self._hidden:
            self._hidden[key] = passes_hidden_tests(self.scorer, task, text, account=self.scoring)
        return self._hidden[key]

    def account(self, name: str, budget=None):
        self._n += 1
        from budgetflow import Budget

        return self.ledger.root(f"{name}#{self._n}", budget or Budget())

    def row(self, name: str, results, acct, by_id) -> dict:
        solved = sum(self.hidden(by_id[r.task_id], r.best.text if r.best else None) for r in results)
        spent = acct.spent()
        return {"strategy": name, "tasks": len(results), "solved": solved, "usd": spent.usd,
                "samples": sum(r.samples for r in results), "output_tokens": spent.output_tokens,
                "engine_cpu_s": spent.cpu_seconds,
                "visible_solved": sum(r.solved_visible for r in results)}


def run_strategies(bench: Bench, replay: ReplayLLM) -> list[dict]:
    from budgetflow import Budget
    from budgetflow.search import (
        AllocationConfig,
        allocate,
        best_of_n,
        sample_until_pass,
    )

    by_id = {t.id: t for t in bench.tasks}
    params = SamplingParams()
    rows = []
    for n in (1, 2, 4, 8):
        replay.reset()
        acct = bench.account(f"best-of-{n}")
        res = [best_of_n(replay, t, bench.verifier, account=acct.child(f"{acct.name}/{t.id}"), n=n, params=params)
               for t in bench.tasks]
        rows.append(bench.row(f"best-of-{n}", res, acct, by_id))
        print(_fmt(rows[-1]), flush=True)
    replay.reset()
    acct = bench.account("early-stop")
    res = [sample_until_pass(replay, t, bench.verifier, account=acct.child(f"{acct.name}/{t.id}"),
                             max_samples=bench.pool, wave_size=1, params=params) for t in bench.tasks]
    rows.append(bench.row("early-stop", res, acct, by_id))
    print(_fmt(rows[-1]), flush=True)
    bo8 = next(r for r in rows if r["strategy"] == "best-of-8")
    for frac in (0.2, 0.1):  # early stop under a batch budget: tasks in order, each sampled until it passes
        replay.reset()
        acct = bench.account(f"early-stop@{int(frac * 100)}%bo8", Budget(usd=bo8["usd"] * frac))
        res = [sample_until_pass(replay, t, bench.verifier, account=acct.child(f"{acct.name}/{t.id}"),
                                 max_samples=bench.pool, wave_size=1, params=params) for t in bench.tasks]
        rows.append(bench.row(acct.name.split("#")[0], res, acct, by_id))
        print(_fmt(rows[-1]), flush=True)
    cfg = AllocationConfig(wave_size=1, max_per_task=bench.pool)
    for frac in (None, 0.2, 0.15, 0.1):
        replay.reset()
        budget = Budget(usd=bo8["usd"] * frac) if frac else None
        name = "allocation" + (f"@{int(frac * 100)}%bo8" if frac else "")
        acct = bench.account(name, budget)
        out = allocate(replay, bench.tasks, bench.verifier, account=acct, config=cfg, params=params)
        row = bench.row(name, out.results, acct, by_id)
        row["stop"] = out.reason
        row["cut_hopeless"] = sum(r.reason == "hopeless" for r in out.results)
        rows.append(row)
        print(_fmt(rows[-1]), flush=True)
    return rows


def _fmt(r: dict) -> str:
    return (f"{r['strategy']:<22}{r['solved']:>7}{r['visible_solved']:>9}{r['samples']:>9}{r['output_tokens']:>10}"
            f"{r['engine_cpu_s']:>10.0f}{r['usd'] * 1000:>10.3f}")


def equal_cost(bench: Bench, qwen: SampleCache, smol: SampleCache, tasks) -> dict | None:
    """SmolLM2 sampled k times (k = its samples that fit in Qwen's CPU-seconds for one sample, per task) with
    early stop on visible tests, vs Qwen sampled once: solved on hidden tests, on the tasks both caches cover."""
    from budgetflow.verifiers import program_for

    common = [t for t in tasks if len(smol.load(t.prompt)) >= 2 and len(qwen.load(t.prompt)) >= 1]
    if not common:
        return None
    q_solved = s_solved = 0
    q_cpu = s_cpu = 0.0
    ks = []
    for t in common:
        q = qwen.load(t.prompt)[0]
        q_cpu += q.engine_seconds
        q_solved += bench.hidden(t, q.text)
        pool = smol.load(t.prompt)
        spent, chosen, k = 0.0, None, 0
        for s in pool:
            if spent + s.engine_seconds > q.engine_seconds and k:
                break
            spent += s.engine_seconds
            k += 1
            report = bench.verifier.run(program_for(t, s.text), t.visible_tests, account=bench.scoring)
            if chosen is None or report.all_passed:
                chosen = s.text
            if report.all_passed:
                break
        ks.append(k)
        s_cpu += spent
        s_solved += bench.hidden(t, chosen)
    mean = lambda xs: statistics.fmean(xs) if xs else 0.0
    return {"tasks": len(common), "qwen_1_sample": {"solved": q_solved, "engine_cpu_s": q_cpu},
            "smollm2_k_samples": {"solved": s_solved, "engine_cpu_s": s_cpu, "mean_k": mean(ks), "max_k": max(ks)},
            "qwen_cpu_s_per_sample": mean([qwen.load(t.prompt)[0].engine_seconds for t in common]),
            "smol_cpu_s_per_sample": mean([s.engine_seconds for t in common for s in smol.load(t.prompt)])}


def plot(rows: list[dict], path: Path, covered: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    bon = [r for r in rows if r["strategy"].startswith("best-of")]
    ax.plot([r["usd"] * 1000 for r in bon], [r["solved"] for r in bon], "o-", label="fixed best-of-N")
    for r in bon:
        ax.annotate(r["strategy"].removeprefix("best-of-"), (r["usd"] * 1000, r["solved"]), fontsize=8)
    es = sorted((r for r in rows if r["strategy"].startswith("early-stop")), key=lambda r: r["usd"])
    ax.plot([r["usd"] * 1000 for r in es], [r["solved"] for r in es], "s--", label="early stop (tasks in order)")
    al = sorted((r for r in rows if r["strategy"].startswith("allocation")), key=lambda r: r["usd"])
    ax.plot([r["usd"] * 1000 for r in al], [r["solved"] for r in al], "^-", label="cross-task allocation")
    ax.set_xlabel("spend (milli-$: engine CPU-seconds + sandbox CPU-seconds)")
    ax.set_ylabel("solved (hidden tests)")
    ax.set_title(f"HumanEval, Qwen2.5-Coder-1.5B, {covered} tasks")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=int, default=8)
    args = ap.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from budgetflow import Ledger
    from budgetflow.sandbox import get_sandbox
    from budgetflow.tasks import load_humaneval

    all_tasks = load_humaneval()
    qwen = SampleCache(QWEN)
    tasks = [t for t in all_tasks if len(qwen.load(t.prompt)) >= args.pool]
    print(f"sample cache covers {len(tasks)} of {len(all_tasks)} HumanEval tasks with {args.pool} samples each")
    ledger = Ledger(Path(tempfile.mkdtemp()) / "bench-search.db")
    bench = Bench(tasks, ledger, get_sandbox("process"), args.pool)
    replay = ReplayLLM(qwen, price_book([QWEN]))
    print(f"{'strategy':<22}{'solved':>7}{'vis.ok':>9}{'samples':>9}{'out tok':>10}{'cpu-s':>10}{'m$':>10}")
    rows = run_strategies(bench, replay)
    bo8 = next(r for r in rows if r["strategy"] == "best-of-8")
    targets = {}
    for r in rows:
        if r["strategy"].startswith(("early-stop", "allocation")):
            targets[r["strategy"]] = {"solved": r["solved"], "best_of_8_solved": bo8["solved"],
                                      "spend_vs_best_of_8": r["usd"] / bo8["usd"] if bo8["usd"] else None,
                                      "meets_target": r["solved"] >= bo8["solved"] and r["usd"] <= 0.5 * bo8["usd"]}
    eq = equal_cost(bench, qwen, SampleCache(SMOL), tasks)
    if eq:
        print(f"\nequal CPU-seconds on {eq['tasks']} tasks: Qwen x1 solved {eq['qwen_1_sample']['solved']} "
              f"({eq['qwen_1_sample']['engine_cpu_s']:.0f} cpu-s); SmolLM2 x k (mean k {eq['smollm2_k_samples']['mean_k']:.1f})"
              f" solved {eq['smollm2_k_samples']['solved']} ({eq['smollm2_k_samples']['engine_cpu_s']:.0f} cpu-s)")
    summary = {"bench": "search_humaneval", "covered_tasks": len(tasks), "total_tasks": len(all_tasks),
               "pool": args.pool, "price_usd_per_cpu_hour": CPU_HOUR_USD[QWEN], "rows": rows, "targets": targets,
               "equal_cost": eq}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "search_humaneval.json").write_text(json.dumps(summary, indent=2))
    plot(rows, RESULTS / "search_humaneval.png", len(tasks))
    print(json.dumps({"bench": "search_humaneval", "covered_tasks": len(tasks), "targets": targets}))
    ledger.close()


if __name__ == "__main__":
    main()
