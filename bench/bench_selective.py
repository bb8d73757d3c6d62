"""Selective answering: risk-coverage curves and utility under a penalty for wrong answers, against always answering.

    python bench/bench_selective.py runs/gsm8k-majority runs/humaneval-sample [--penalty 1] [--out FILE]

Each input is a `budgetflow run` output directory (its results.jsonl: `confidence` and the hidden-test verdict
`solved` of every task), a JSONL file of lines with `confidence` and one of `solved` / `correct` / `passed`, or a
benchmark JSONL with one `methods` entry per method per line (bench_search_gsm8k.py: one curve per method). Tasks
with no verdict are left out; a task with no confidence is answered at every threshold (as a run does by default).
For each input it prints the curve (coverage, risk, utility at every distinct confidence), the best threshold and
always answering, and writes everything to bench/results/selective.json (+ selective.png when matplotlib is there).
The comparison is within each input: the same tasks, answered at different thresholds.

To measure the issue's figures: run GSM8K-100 (e.g. --strategy majority) and HumanEval (--strategy sample) with
`budgetflow run`, then pass both output directories here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.provenance import provenance  # noqa: E402
from budgetflow.runs import RunDir, risk_coverage  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
VERDICT_KEYS = ("solved", "correct", "passed")


def _verdict(row: dict):
    return next((row[k] for k in VERDICT_KEYS if k in row), None)


def read_inputs(path: Path) -> list[tuple[str, list[tuple[float | None, bool]]]]:
    """Every (label, pairs) an input holds: one for a run directory or a flat JSONL file; one per method for a
    benchmark JSONL whose lines hold `methods: {name: {confidence, correct}}` (bench_search_gsm8k.py,
    bench_thinking_gsm8k.py)."""
    if path.is_file():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows and all(isinstance(r.get("methods"), dict) for r in rows):
            names = sorted({m for r in rows for m in r["methods"]})
            out = []
            for m in names:
                pairs = [(r["methods"][m].get("confidence"), bool(_verdict(r["methods"][m])))
                         for r in rows if _verdict(r["methods"].get(m, {})) is not None]
                if any(c is not None for c, _ in pairs):
                    out.append((f"{path.stem}:{m}", pairs))
            return out
    return [read_pairs(path)]


def read_pairs(path: Path) -> tuple[str, list[tuple[float | None, bool]]]:
    """(label, [(confidence, correct)]) of the scored tasks in a run directory or a JSONL file."""
    if path.is_dir():
        store = RunDir(path)
        if not store.results.exists():
            raise SystemExit(f"{path}: no results.jsonl; give a budgetflow run's --out directory or a JSONL file")
        config = json.loads((path / "run.json").read_text()) if (path / "run.json").exists() else {}
        label = f"{path.name} ({Path(config.get('source', '?')).name}, {config.get('strategy') or 'default'})"
        return label, [(r.confidence, bool(r.solved)) for r in store.done().values() if r.solved is not None]
    pairs = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        verdict = next((row[k] for k in VERDICT_KEYS if k in row), None)
        if "confidence" not in row:
            raise SystemExit(f"{path}:{n}: no 'confidence' field; this input carries no per-task confidence")
        if verdict is not None:
            pairs.append((row["confidence"], bool(verdict)))
    return path.name, pairs


def table(label: str, sel) -> str:
    lines = [f"\n{label}: {sel.scored} scored task(s), {sel.unknown} with no confidence, wrong answer = "
             f"-{sel.penalty:g}",
             f"{'answer when conf':>18} {'answered':>8} {'coverage':>8} {'risk':>6} {'accuracy':>8} {'utility':>8}"]
    for o in sel.curve:
        t = "above all" if o.threshold is None else f">= {o.threshold:.3f}"
        lines.append(f"{t:>18} {o.answered:>8} {o.coverage:>8.2f} {'-' if o.risk is None else f'{o.risk:.2f}':>6} "
                     f"{'-' if o.accuracy is None else f'{o.accuracy:.2f}':>8} {o.utility:>+8.2f}"
                     + ("  <- best" if o == sel.best else ""))
    gain = sel.best.utility - sel.always.utility
    lines.append(f"always answering: utility {sel.always.utility:+.2f} ({sel.always.utility_per_task:+.3f}/task); "
                 f"best threshold: {sel.best.utility:+.2f} ({sel.best.utility_per_task:+.3f}/task), "
                 f"{gain:+.2f} over always answering at coverage {sel.best.coverage:.2f}")
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (risk_ax, util_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    for r in results:
        curve = r["curve"]
        risk = [(o["coverage"], o["risk"]) for o in curve if o["risk"] is not None]
        risk_ax.plot([c for c, _ in risk], [v for _, v in risk], marker="o", ms=3, label=r["label"])
        util_ax.plot([o["coverage"] for o in curve], [o["utility_per_task"] for o in curve], marker="o", ms=3,
                     label=r["label"])
    risk_ax.set_xlabel("coverage")
    risk_ax.set_ylabel("risk (wrong / answered)")
    util_ax.set_xlabel("coverage")
    util_ax.set_ylabel(f"utility per task (wrong = -{results[0]['penalty']:g})")
    util_ax.axhline(0, color="#8b949e", lw=0.8)
    for ax in (risk_ax, util_ax):
        ax.grid(alpha=0.3)
        ax.set_xlim(0, 1.02)
    util_ax.legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", type=Path, help="budgetflow run directories or JSONL files")
    ap.add_argument("--penalty", type=float, default=1.0, help="utility of a wrong answer is -PENALTY (default 1)")
    ap.add_argument("--out", type=Path, default=RESULTS / "selective.json")
    args = ap.parse_args(argv)
    if args.penalty < 0:
        ap.error("--penalty must be 0 or more")
    results = []
    for path, (label, pairs) in ((p, lp) for p in args.inputs for lp in read_inputs(p)):
        sel = risk_coverage(pairs, penalty=args.penalty)
        if sel is None:
            print(f"\n{label}: no scored task, skipped")
            continue
        print(table(label, sel))
        results.append({"label": label, "input": str(path), **sel.model_dump(mode="json")})
    if not results:
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    png = plot(results, args.out.with_suffix(".png"))
    args.out.write_text(json.dumps({"provenance": provenance(), "penalty": args.penalty, "results": results,
                                    "plot": str(png) if png else None}, indent=2) + "\n")
    print(f"\nwrote {args.out}" + (f" and {png}" if png else ""))
    summary = {r["label"]: {"always": r["always"]["utility"], "best": r["best"]["utility"],
                            "best_threshold": r["best"]["threshold"], "coverage": r["best"]["coverage"]}
               for r in results}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
