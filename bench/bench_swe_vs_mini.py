"""budgetflow's SWE graph vs mini-swe-agent on the same repo tasks, the same model and server, the same per-task cap.

Both talk to one vLLM server of Qwen2.5-Coder-1.5B (started here, with the context serving_context gives it) and are
priced the same, per token ($0.10/M in, $0.40/M out: independent of machine load, and what LiteLLM can price for
mini-swe-agent). budgetflow runs `solve()` on its ledger (reserve before each call, hard cap). mini-swe-agent 2.x runs
its text-based default agent with `cost_limit` = the cap (it checks after each call), in its Docker environment on the
task's environment image with `--network none`, on a copy of the repository. Each patch is scored the same way,
apart from both budgets: fail_to_pass + pass_to_pass on the scorer's copy of the tests.

    python bench/bench_swe_vs_mini.py --tasks 3 --budget-usd 0.004

Writes bench/results/swe_vs_mini.jsonl (one row per task and system, resumable) and swe_vs_mini.json (summary).

Status: the harness has been run end to end once, as a smoke test with SmolLM2-135M on one QuixBugs task
(bench/results/swe_vs_mini_smollm2-135m.json; neither system resolved it, and neither went over the cap). The Qwen
comparison was started twice on the 2-core CPU, shared with other work, and stopped both times before any task
finished (see the README, "SWE runs on repositories with their own dependencies").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench_swe import score

RESULTS = Path(__file__).resolve().parent / "results"
IN_PER_M, OUT_PER_M = 0.10, 0.40
MODEL = "qwen2.5-coder-1.5b"  # --model smollm2-135m: a quick smoke run of the harness (files named apart)


def pick_tasks(n: int) -> list:
    """One QuixBugs task, one fixture task on Debian's pytest, one with its own dependencies, then more of each."""
    from budgetflow.swe import ensure_swe_fixtures, load_quixbugs

    fixtures = ensure_swe_fixtures()
    plain = [t for t in fixtures if t.environment is None]
    deps = [t for t in fixtures if t.environment is not None]
    quix = load_quixbugs(max(1, n))
    order = [x for trio in zip(quix, plain, deps) for x in trio]
    return [t.model_copy(update={"hidden_tests": False}) for t in order[:n]]


def run_budgetflow(task, llm, cap: float, ledger, args) -> dict:
    from budgetflow.agents import AgentConfig, solve

    cfg = AgentConfig(wave_size=args.trajectories, parallel=args.trajectories, max_waves=1, max_turns=args.turns,
                      attempts=2, turn_max_tokens=args.turn_tokens)
    res = solve(task, model=llm, budget=cap, ledger=ledger, config=cfg, thread_id=f"bf-{task.instance_id}")
    total = res.spend["total"]
    return {"patch": res.answer or "", "usd": total.usd, "calls": total.calls, "stop": res.reason,
            "input_tokens": total.input_tokens, "output_tokens": total.output_tokens}


def run_mini(task, url: str, cap: float, image: str, args) -> dict:
    import litellm
    import yaml
    from minisweagent import config as mini_config
    from minisweagent.agents.default import DefaultAgent
    from minisweagent.environments.docker import DockerEnvironment
    from minisweagent.models.litellm_textbased_model import LitellmTextbasedModel

    name = f"hosted_vllm/{args.model}"
    litellm.register_model({name: {"input_cost_per_token": IN_PER_M / 1e6, "output_cost_per_token": OUT_PER_M / 1e6,
                                   "litellm_provider": "hosted_vllm", "mode": "chat"}})
    cfg = yaml.safe_load((Path(mini_config.__file__).parent / "mini_textbased.yaml").read_text())
    work = Path(tempfile.mkdtemp(prefix="mini-")) / "repo"
    shutil.copytree(task.repo, work)
    git = ["git", "-C", str(work), "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
    if not (work / ".git").exists():  # task repos are git checkouts already; a plain directory becomes one
        subprocess.run(["git", "init", "-q", str(work)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base", "--allow-empty"], check=True)
    model_cfg = dict(cfg.get("model") or {})
    model_cfg["model_kwargs"] = {**(model_cfg.get("model_kwargs") or {}), "api_base": url, "temperature": 0.0,
                                 "max_tokens": args.turn_tokens}
    model_cfg["model_name"] = name
    model = LitellmTextbasedModel(**model_cfg)
    env = DockerEnvironment(image=image, cwd="/repo", run_args=["--rm", "--network", "none", "-v", f"{work}:/repo"],
                            **cfg.get("environment", {}))
    agent_cfg = {k: v for k, v in cfg["agent"].items() if k != "mode"}
    steps = args.turns * 2 * args.trajectories  # as many model calls as budgetflow's trajectories may make
    agent = DefaultAgent(model, env, **{**agent_cfg, "cost_limit": cap, "step_limit": steps})
    try:
        out = agent.run(task=task.issue)
    except Exception as err:  # noqa: BLE001 — a crash is a result of the peer, recorded
        out = {"exit_status": f"{type(err).__name__}: {err}"[:200]}
    finally:
        env.cleanup()
    subprocess.run(["docker", "run", "--rm", "-v", f"{work}:/repo", image, "chown", "-R",
                    f"{os.getuid()}:{os.getgid()}", "/repo"], capture_output=True)
    patch = subprocess.run([*git, "diff"], capture_output=True, text=True).stdout
    return {"patch": patch, "usd": float(agent.cost), "calls": int(agent.n_calls),
            "stop": str(out.get("exit_status", "")) if isinstance(out, dict) else str(out)}


def results_name(model: str) -> str:
    return "swe_vs_mini" if model == MODEL else f"swe_vs_mini_{model}"


def summarise(tasks: list, done: dict, cap: float, model: str = MODEL) -> dict:
    """Resolved, spend, spend per resolved and cap overshoot per system; written to swe_vs_mini.json."""
    summary = {"bench": "swe_vs_mini", "model": model, "price_per_million": [IN_PER_M, OUT_PER_M],
               "budget_usd_per_task": cap, "systems": {}}
    for system in ("budgetflow", "mini"):
        rows = [done[(t.instance_id, system)] for t in tasks if (t.instance_id, system) in done]
        resolved = sum(r["resolved"] for r in rows)
        usd = sum(r["usd"] for r in rows)
        summary["systems"][system] = {
            "tasks": len(rows), "resolved": resolved, "usd": round(usd, 6),
            "usd_per_resolved": round(usd / resolved, 6) if resolved else None,
            "max_overshoot_usd": round(max((r["overshoot_usd"] for r in rows), default=0.0), 6),
            "over_cap": sum(r["overshoot_usd"] > 0 for r in rows),
            "rows": [{k: r[k] for k in ("instance_id", "resolved", "usd", "calls", "stop", "seconds")} for r in rows]}
    (RESULTS / f"{results_name(model)}.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=3)
    ap.add_argument("--budget-usd", type=float, default=0.004, help="per task, both systems")
    ap.add_argument("--trajectories", type=int, default=2)
    ap.add_argument("--turns", type=int, default=6)
    ap.add_argument("--turn-tokens", type=int, default=384)
    ap.add_argument("--model", default=MODEL, help="a local model name (budgetflow models list)")
    ap.add_argument("--url", default=None, help="a running vLLM server of qwen2.5-coder-1.5b (…/v1)")
    args = ap.parse_args()
    from budgetflow.llm._server import OFFLINE_ENV

    for k, v in {**OFFLINE_ENV, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "MSWEA_SILENT_STARTUP": "1"}.items():
        os.environ.setdefault(k, v)
    from budgetflow import Ledger, PriceBook
    from budgetflow.llm import LOCAL_MODELS, VLLMServer, get_llm, prepare, serving_context
    from budgetflow.sandbox import build_python_env, get_sandbox, with_environment
    from budgetflow.tasks import environment_requirements, metadata_files

    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / f"{results_name(args.model)}.jsonl"
    done = {(r["instance_id"], r["system"]): r for r in map(json.loads, raw.read_text().splitlines())
            if r["budget_usd"] == args.budget_usd} if raw.exists() else {}
    tasks = pick_tasks(args.tasks)
    server = None
    url = args.url
    prices = PriceBook()
    prices.set(f"vllm/{args.model}", input_per_million=IN_PER_M, output_per_million=OUT_PER_M)
    ledger = Ledger(Path(tempfile.mkdtemp()) / "bench.db")
    docker = get_sandbox("docker")
    try:
        if url is None and any((t.instance_id, s) not in done for t in tasks for s in ("budgetflow", "mini")):
            length, why = serving_context(f"local/{args.model}")
            print(f"serving {args.model} with a context of {why}", flush=True)
            server = VLLMServer(prepare(args.model), args.model, device="cpu", max_model_len=length,
                                extra_args=LOCAL_MODELS[args.model].server_args).start()
            url = server.base_url
        llm = get_llm(f"vllm/{args.model}@{url}", prices=prices) if url else None
        for task in tasks:
            spec = task.environment
            reqs = environment_requirements(spec, metadata_files(task.repo), task.project) if spec else []
            env = build_python_env(reqs or ["pytest", "pytest-timeout"], constraints=spec.constraints if spec else
                                   ("pytest==8.3.4", "pytest-timeout==2.4.0"))
            image = with_environment(docker, env).image
            for system in ("budgetflow", "mini"):
                if (task.instance_id, system) in done:
                    continue
                t0 = time.monotonic()
                row = (run_budgetflow(task, llm, args.budget_usd, ledger, args) if system == "budgetflow"
                       else run_mini(task, url, args.budget_usd, image, args))
                row.update(instance_id=task.instance_id, system=system, budget_usd=args.budget_usd,
                           seconds=round(time.monotonic() - t0, 1), **score(task, row["patch"], ledger),
                           overshoot_usd=max(0.0, row["usd"] - args.budget_usd))
                with raw.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                done[(task.instance_id, system)] = row
                summarise(tasks, done, args.budget_usd, args.model)
                print(f"{task.instance_id:<32} {system:<10} resolved={row['resolved']!s:<5} ${row['usd']:.5f} "
                      f"calls={row['calls']} stop={row['stop']} ({row['seconds']:.0f}s)", flush=True)
    finally:
        ledger.close()
        docker.close()
        if server is not None:
            server.stop()
    print(json.dumps(summarise(tasks, done, args.budget_usd, args.model)))


if __name__ == "__main__":
    main()
