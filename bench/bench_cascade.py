"""HumanEval: `--strategy cascade` and a learned (calibrated) mixture of configurations against single
configurations, replayed from the sample cache (bench/sample_cache.py) on a fixed random subset and charged on a real
SQLite ledger as if the samples had just been generated (engine-seconds at the cache's $/cpu-hour), plus their
sandbox runs on the visible tests. Hidden tests score the selected candidate on an account outside every spend.

Configurations: SmolLM2-135M and Qwen2.5-Coder-1.5B, greedy (T0, one sample) or sampled (T0.8, up to 8), 384 tokens.
The learned mixture is calibrated on the first `--calibrate` tasks of the subset (every configuration run on each)
and every row is compared on the remaining tasks only.

    python bench/bench_cascade.py                  # the 40-task subset of seed 0 (caches: see bench/sample_cache.py)
"""

from __future__ import annotations

import argparse
import re
import json
import os
import tempfile
import time
from pathlib import Path

from provenance import provenance
from sample_cache import CPU_HOUR_USD, ReplayLLM, SampleCache, SamplingParams, price_book
from subsets import fixed_subset, wilson

RESULTS = Path(__file__).resolve().parent / "results"
QWEN, SMOL = "local/qwen2.5-coder-1.5b", "local/smollm2-135m"


class Router:
    """One model's replays, by temperature: the cascade asks a model for samples at a stage's temperature, and
    each (model, temperature) has its own cache."""

    def __init__(self, model: str, replays: dict[float, ReplayLLM]):
        self.name = model
        self.replays = replays
        self.prices = next(iter(replays.values())).prices

    def generate(self, prompt, *, account, n=1, max_tokens=256, temperature=0.0, **kw):
        return self.replays[float(temperature)].generate(prompt, account=account, n=n, max_tokens=max_tokens, **kw)

    def reset(self) -> None:
        for r in self.replays.values():
            r.reset()


def caches(max_tokens: int, pool: int, smol_sampled: bool = True) -> dict[tuple[str, float], SampleCache]:
    """The caches the rows replay: greedy per model, and sampled (T0.8) unless `pool` is 0 (SmolLM2's sampled one
    only with `smol_sampled`)."""
    temps = (0.0, 0.8) if pool else (0.0,)
    return {(m, t): SampleCache(m, SamplingParams(max_tokens=max_tokens, temperature=t))
            for m in (SMOL, QWEN) for t in temps if smol_sampled or (m, t) != (SMOL, 0.8)}


def complete(task, cache: dict, pool: int) -> bool:
    return all(len(c.load(task.prompt)) >= (1 if t == 0 else pool) for (m, t), c in cache.items())


class Bench:
    def __init__(self, ledger, sandbox, routers: dict[str, Router]):
        from budgetflow import Budget
        from budgetflow.verifiers import UnitTestVerifier

        self.ledger, self.routers = ledger, routers
        self.verifier = UnitTestVerifier(sandbox, usd_per_cpu_second=CPU_HOUR_USD[QWEN] / 3600)
        self.scorer = UnitTestVerifier(sandbox, per_test_timeout_s=10.0)
        self.scoring = ledger.root("scoring", Budget())
        self._hidden: dict[tuple[str, str], bool] = {}
        self._n = 0

    def hidden(self, task, text: str | None) -> bool:
        from budgetflow.verifiers import passes_hidden_tests

        if text is None:
            return False
        if (task.id, text) not in self._hidden:
            self._hidden[(task.id, text)] = passes_hidden_tests(self.scorer, task, text, account=self.scoring)
        return self._hidden[(task.id, text)]

    def run(self, name: str, stages: list[str], tasks, *, budget_usd: float | None = None, **settings) -> dict:
        """The cascade of `stages` on `tasks` in order, under one batch account (capped at `budget_usd`)."""
        from budgetflow import Budget
        from budgetflow.search import Resources, make_solver

        for r in self.routers.values():
            r.reset()
        self._n += 1
        batch = self.ledger.root(f"{name}#{self._n}", Budget(usd=budget_usd) if budget_usd else Budget())
        solver = make_solver("cascade", {"stages": stages, **settings})
        results = []
        for t in tasks:
            res = Resources(llm=self.routers[QWEN], account=batch.child(f"{batch.name}/{t.id}"),
                            verifier=self.verifier, llm_for=lambda m: self.routers[m])
            results.append(solver.solve(t, res))
        by_id = {t.id: t for t in tasks}
        # per task, what selective answering reads (bench_selective.py)
        per_task = [{"task_id": r.task_id, "confidence": r.confidence,
                     "solved": self.hidden(by_id[r.task_id], r.answer)} for r in results]
        solved = sum(p["solved"] for p in per_task)
        lo, hi = wilson(solved, len(tasks))
        solved_by: dict[str, int] = {}
        for r in results:
            c = r.details["cascade"]
            if c["solved_by"]:
                label = stages[c["solved_by"] - 1]
                solved_by[label] = solved_by.get(label, 0) + 1
        return {"strategy": name, "stages": stages, "tasks": len(tasks), "solved": solved, "wilson95": [lo, hi],
                "visible_solved": sum(r.solved_visible for r in results), "usd": batch.spent().usd,
                "samples": sum(r.samples for r in results), "budget_usd": budget_usd,
                "solved_by_stage_visible": solved_by, "results": results, "per_task": per_task}


SELECTIVE_ROWS = ("qwen best-of-8", "qwen early-stop-8", "qwen greedy", "cascade (hand-ordered)",
                  "cascade qwen greedy -> waves")


def fmt(r: dict) -> str:
    return (f"{r['strategy']:<50}{r['solved']:>4}/{r['tasks']:<4}[{r['wilson95'][0]:.2f},{r['wilson95'][1]:.2f}]"
            f"{r['visible_solved']:>6}{r['samples']:>8}{r['usd'] * 1000:>10.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subset", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibrate", type=int, default=8, help="calibration tasks (the subset's first)")
    ap.add_argument("--max-tokens", type=int, default=384)
    ap.add_argument("--pool", type=int, default=8, help="sampled samples per task (0: greedy configurations only)")
    ap.add_argument("--no-smol-sampled", action="store_true",
                    help="leave out SmolLM2's sampled configurations (when its T0.8 cache was not generated)")
    args = ap.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from budgetflow import Ledger
    from budgetflow.sandbox import get_sandbox
    from budgetflow.search import evaluate_order, learn_cascade, observation_from
    from budgetflow.tasks import load_humaneval

    t0 = time.monotonic()
    subset = fixed_subset(load_humaneval(), args.subset, args.seed)
    smol_sampled = not args.no_smol_sampled
    cache = caches(args.max_tokens, args.pool, smol_sampled)
    tasks = [t for t in subset if complete(t, cache, args.pool)]
    skipped = [t.id for t in subset if not complete(t, cache, args.pool)]
    print(f"subset: {len(subset)} HumanEval tasks (seed {args.seed}); {len(tasks)} with every cache complete"
          + (f", skipped {len(skipped)} whose caches are incomplete: {', '.join(skipped)}" if skipped else ""))
    if len(tasks) <= args.calibrate:
        raise SystemExit(f"need more than {args.calibrate} complete tasks to calibrate and compare")
    prices = price_book([QWEN, SMOL])
    routers = {m: Router(m, {t: ReplayLLM(c, prices) for (mm, t), c in cache.items() if mm == m}) for m in (QWEN, SMOL)}
    ledger = Ledger(Path(tempfile.mkdtemp()) / "bench-cascade.db")
    bench = Bench(ledger, get_sandbox("process"), routers)
    calib, rest = tasks[:args.calibrate], tasks[args.calibrate:]

    s, q, n = f"{SMOL}:", f"{QWEN}:", args.pool
    ks = [k for k in (1, 2, 4, 8) if k <= n]
    smol_ks = ks if smol_sampled else []
    singles = [("smol greedy", [s + "T0x1"])] + [(f"smol best-of-{k}", [s + f"T0.8x{k}"]) for k in smol_ks] \
        + [("qwen greedy", [q + "T0x1"])] + [(f"qwen best-of-{k}", [q + f"T0.8x{k}"]) for k in ks] \
        + [(f"qwen early-stop-{k}", [q + f"T0.8x{k}w1"]) for k in ks if k > 1]
    hand = [s + "T0x1", q + "T0x1"] + ([q + f"T0.8x{n}w1"] if n else [])
    pool = [s + "T0x1", q + "T0x1"] + ([s + f"T0.8x{n}w1"] if n and smol_sampled else []) \
        + ([q + f"T0.8x{n}w1"] if n else [])
    head = f"{'strategy':<50}{'solved':>9} {'wilson95':<12}{'vis.ok':>6}{'samples':>8}{'m$':>10}"
    print(f"\nall rows on the {len(rest)} tasks after the {len(calib)} calibration tasks\n{head}")
    rows = []
    qwen_only = [q + "T0x1"] + ([q + f"T0.8x{n}w1"] if n else [])  # the example: greedy first, then waves
    for name, stages in singles + [("cascade (hand-ordered)", hand), ("cascade qwen greedy -> waves", qwen_only)]:
        rows.append(bench.run(name, stages, rest))
        print(fmt(rows[-1]), flush=True)

    # calibration: every configuration of the pool on each calibration task, then the learned order on the rest
    cal = bench.run("calibration (every config)", pool, calib, run_all=True)
    obs = [observation_from(r.details["cascade"], range(1, len(pool) + 1)) for r in cal["results"]]
    obs = [o for o in obs if o is not None]
    labels = dict(enumerate(pool, start=1))
    best_single = max((r for r in rows if len(r["stages"]) == 1), key=lambda r: (r["solved"], -r["usd"]))
    cal_best = bench.run("best single on calibration", best_single["stages"], calib)
    # the best single's cost per calibration task: from the calibration itself when it is one of the pool (the
    # same runs, so "fits" is exact), else from its own run there (sandbox timing varies a little between runs)
    member = next((i for i, st in labels.items() if [st] == best_single["stages"]), None)
    single_cost = evaluate_order(obs, [member])[1] if member else cal_best["usd"] / len(calib)
    learned = {"learned mixture": learn_cascade(obs, list(labels), labels=labels),
               "learned mixture @ best single's cost": learn_cascade(
                   obs, list(labels), labels=labels, budget_usd=single_cost)}
    print(f"\ncalibration on {len(calib)} tasks ({cal['usd'] * 1000:.3f} m$):")
    for c in learned["learned mixture"].table:
        print(f"  stage{c.stage} {c.config:<40} pass {c.passed}/{c.tasks} ({c.pass_rate:.0%})  "
              f"mean {c.mean_usd * 1000:.4f} m$/task")
    for name, lc in learned.items():
        stages = [labels[n] for n in lc.order]
        print(f"  {name}: {' -> '.join(stages)} (expected {lc.expected_solved:.0%} visible at "
              f"{lc.expected_usd * 1000:.4f} m$/task; {lc.rule})")
        rows.append(bench.run(name, stages, rest))
        rows[-1]["learned"] = lc.model_dump()
        print(fmt(rows[-1]), flush=True)

    # equal spend: the best single configuration given only what each cascade spent (tasks in order, anytime)
    print(f"\nbest single configuration on these tasks: {best_single['strategy']}")
    for r in [x for x in rows if x["strategy"].startswith(("cascade", "learned"))]:
        rows.append(bench.run(f"{best_single['strategy']} @ {r['strategy']} spend", best_single["stages"], rest,
                              budget_usd=r["usd"]))
        print(fmt(rows[-1]), flush=True)
    bo8 = next((r for r in rows if r["strategy"] == "qwen best-of-8"), best_single)  # --pool < 8: the best single
    reach = {r["strategy"]: {"solved": r["solved"], "usd": r["usd"], "reaches_best_of_8": r["solved"] >= bo8["solved"],
                             "spend_vs_best_of_8": r["usd"] / bo8["usd"]} for r in rows}
    for r in rows:
        r.pop("results", None)
        per_task = r.pop("per_task", [])
        if n and r["strategy"] in SELECTIVE_ROWS:  # per-task confidence + correctness for the risk-coverage bench
            name = re.sub(r"[^A-Za-z0-9.-]+", "_", r["strategy"]).strip("_")
            (RESULTS / f"cascade_tasks_{name}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in per_task))
    summary = {"bench": "cascade_humaneval", "provenance": provenance(), "subset": args.subset, "seed": args.seed,
               "complete_tasks": len(tasks), "skipped_incomplete": skipped, "calibration_tasks": [t.id for t in calib],
               "compared_tasks": len(rest), "smol_sampled": smol_sampled,
               "price_usd_per_cpu_hour": CPU_HOUR_USD[QWEN], "max_tokens": args.max_tokens,
               "best_single": best_single["strategy"], "pool": n, "reach_target": bo8["strategy"],
               "reach_target_solved": bo8["solved"], "rows": rows,
               "calibration": {"usd": cal["usd"], "best_single_usd": cal_best["usd"]}, "reach": reach,
               "wall_s": time.monotonic() - t0}
    print(f"\nspend to reach {bo8['strategy']}'s {bo8['solved']} solved ({bo8['usd'] * 1000:.3f} m$):")
    for name, v in reach.items():
        if v["reaches_best_of_8"]:
            print(f"  {name:<48} {v['solved']:>3} solved at {v['spend_vs_best_of_8']:.2f}x its spend")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("cascade.json" if n == 8 else f"cascade_pool{n}.json")
    out.write_text(json.dumps(summary, indent=2, default=str))
    try:
        plot(rows, RESULTS / ("cascade.png" if n == 8 else f"cascade_pool{n}.png"), len(rest))
    except ImportError:
        print("matplotlib not installed: no PNG")
    print(json.dumps({"bench": "cascade_humaneval", "compared_tasks": len(rest), "best_single": best_single["strategy"],
                      "rows": {r["strategy"]: [r["solved"], round(r["usd"] * 1000, 4)] for r in rows}}))
    ledger.close()


def plot(rows: list[dict], path: Path, n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for r in rows:
        single = len(r["stages"]) == 1 and "@" not in r["strategy"]
        ax.scatter(r["usd"] * 1000, r["solved"], marker="o" if single else "*", s=30 if single else 110,
                   color="#8b949e" if single else "#cf222e")
        ax.annotate(r["strategy"], (r["usd"] * 1000, r["solved"]), fontsize=6)
    ax.set_xlabel("spend (milli-$: engine CPU-seconds + sandbox CPU-seconds)")
    ax.set_ylabel(f"solved (hidden tests, of {n})")
    ax.set_title("HumanEval subset: single configurations (grey) vs cascades (red)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
