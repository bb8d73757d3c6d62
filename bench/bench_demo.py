"""The main job, measured (issue 18): the demo's 20-task run one task at a time (`-j 1`, the old default) against
the new default concurrency, and vLLM's prefix caching on and off for a sampling run and a beam search.

Every configuration runs in a fresh process (its own vLLM server, so no cache is shared between them) on the same
tasks with the same cap; the table gives each one's wall time, solved count, spend and engine CPU-seconds, and the
ratios against its baseline from the same invocation. The machine is shared: loadavg is recorded with every row.

    python bench/bench_demo.py                # all rows (about 40 minutes on 2 cores)
    python bench/bench_demo.py --only demo    # the concurrency rows only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # provenance, and the checkout's budgetflow

from provenance import provenance  # noqa: E402

MODEL = "local/qwen2.5-coder-1.5b"
ROWS = {
    # name: (group, prepare_run settings, engine options)
    "demo -j 1": ("demo", dict(source="humaneval", limit=20, budget_usd=0.05, concurrency=1), {}),
    "demo default -j": ("demo", dict(source="humaneval", limit=20, budget_usd=0.05), {}),
    "sample, prefix cache off": ("sample", dict(source="humaneval", limit=8, budget_usd=0.02),
                                 {"prefix_caching": False}),
    "sample, prefix cache on": ("sample", dict(source="humaneval", limit=8, budget_usd=0.02), {}),
    "beam, prefix cache off": ("beam", dict(source="gsm8k100", limit=4, budget_usd=0.02, strategy="beam"),
                               {"prefix_caching": False}),
    "beam, prefix cache on": ("beam", dict(source="gsm8k100", limit=4, budget_usd=0.02, strategy="beam"), {}),
}


def run_one(name: str, out: str) -> dict:
    """One configuration, in this process: returns what the table needs."""
    from budgetflow.runs import prepare_run, run_batch
    from budgetflow.runs._store import RunDir

    _, settings, engine = ROWS[name]
    t0 = time.monotonic()
    load0 = os.getloadavg()[0]
    config, tasks, _ = prepare_run(out=out, model=MODEL, engine_options=engine, **settings)
    summary = run_batch(config, tasks, progress=False)
    records = RunDir(out).read()
    engine_s = sum(r.spend.get("total", {}).get("cpu_seconds", 0.0) for r in records)
    return {"row": name, "wall_s": round(time.monotonic() - t0, 1), "run_wall_s": round(summary.wall_s, 1),
            "solved": summary.solved, "tasks": summary.total, "spent_usd": summary.spent_usd,
            "cap_usd": summary.cap_usd, "cpu_seconds": round(engine_s, 1), "verify_ok": summary.verify_ok,
            "concurrency": config.concurrency, "loadavg_start": round(load0, 2),
            "loadavg_end": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted({g for g, _, _ in ROWS.values()}), action="append")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one row in this process
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--json", default=str(HERE / "results" / "demo.json"))
    args = ap.parse_args()
    if args.one:
        print("ROW " + json.dumps(run_one(args.one, args.out)), flush=True)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        for i, name in enumerate(n for n, (g, _, _) in ROWS.items() if not args.only or g in args.only):
            proc = subprocess.run([sys.executable, __file__, "--one", name, "--out", f"{tmp}/{i}"],
                                  capture_output=True, text=True)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("ROW ")), None)
            if line is None:
                sys.exit(f"{name}: failed\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
            rows.append(json.loads(line[4:]))
            # what the run said it picked when -j was not given ("N task(s) at once: ...")
            picked = next((ln.strip() for ln in proc.stderr.splitlines() if "task(s) at once" in ln), None)
            if picked:
                rows[-1]["concurrency_note"] = picked
            print(f"{name:28s} wall {rows[-1]['wall_s']:7.1f}s  solved {rows[-1]['solved']}/{rows[-1]['tasks']}  "
                  f"${rows[-1]['spent_usd']:.4f}  engine {rows[-1]['cpu_seconds']:.0f} CPU-s  "
                  f"-j {rows[-1]['concurrency']}  load {rows[-1]['loadavg_start']}", flush=True)
    by = {r["row"]: r for r in rows}
    ratios = {}
    for new, base in (("demo default -j", "demo -j 1"), ("sample, prefix cache on", "sample, prefix cache off"),
                      ("beam, prefix cache on", "beam, prefix cache off")):
        if new in by and base in by:
            ratios[f"{new} / {base}"] = {k: round(by[new][k] / by[base][k], 3) if by[base][k] else None
                                         for k in ("wall_s", "run_wall_s", "cpu_seconds", "spent_usd")}
    print("\nratio (new / baseline)          wall   run wall   engine CPU-s   spend")
    for k, v in ratios.items():
        print(f"{k:60s} {v['wall_s']}  {v['run_wall_s']}  {v['cpu_seconds']}  {v['spent_usd']}")
    result = {"benchmark": "demo", "model": MODEL, "rows": rows, "ratios": ratios, **provenance()}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
