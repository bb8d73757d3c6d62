"""`budgetflow serve` measured (issue 14), in one run against one local vLLM server (SmolLM2-135M on the CPU):

1. Caps: the same agent, same tasks, same cap, with the client's own limit vs through a capped gateway key —
   mini-swe-agent's `cost_limit` vs the gateway, and LiteLLM's library `max_budget` vs the gateway. Spend is what
   the ledger recorded (the gateway meters every call either way; the uncapped runs use a key far above the cap).
2. Overhead: one-token chat calls straight to vLLM vs through the gateway, alternating (median and p99 ratio), and
   the requests/s the gateway sustains with 64 concurrent clients.

The remote path is priced per token (LiteLLM's `openai/` route to the vLLM server), and LiteLLM's client-side cost
is registered at the same price, so the clients' own limits see the same dollars the ledger does.

    python bench/bench_gateway.py [--tasks 2] [--cap 0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from provenance import provenance  # noqa: E402

IN_PER_M, OUT_PER_M = 100.0, 200.0  # $/million tokens: a few cents per agent turn, so caps bind in a few turns
QUIX = Path(os.environ.get("BUDGETFLOW_CACHE", Path.home() / ".cache" / "budgetflow")) / "quixbugs"
IMAGE = os.environ.get("BUDGETFLOW_SANDBOX_IMAGE", "budgetflow/sandbox-base:bookworm")


class InThread:
    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)


def mini_run(url: str, key: str, task: Path, cost_limit: float, workdir: Path) -> dict:
    import minisweagent
    import yaml
    from minisweagent.agents.default import DefaultAgent
    from minisweagent.environments.docker import DockerEnvironment
    from minisweagent.models.litellm_textbased_model import LitellmTextbasedModel

    repo = Path(tempfile.mkdtemp(dir=workdir)) / task.name
    shutil.copytree(task / "repo", repo)
    config = yaml.safe_load((Path(minisweagent.__file__).parent / "config" / "mini_textbased.yaml").read_text())
    model = LitellmTextbasedModel(model_name="openai/smol",
                                  model_kwargs={"api_base": url, "api_key": key, "max_tokens": 96, "temperature": 0})
    env = DockerEnvironment(image=IMAGE, cwd="/repo", timeout=20, run_args=["--rm", "--network=none", "-v",
                                                                            f"{repo}:/repo"])
    agent = DefaultAgent(model, env, **{**config["agent"], "step_limit": 40, "cost_limit": cost_limit,
                                          "max_consecutive_format_errors": 0})  # run on until a limit stops it
    try:
        status = agent.run(json.loads((task / "task.json").read_text())["issue"]).get("exit_status", "?")
    except Exception as err:  # the gateway's refusal ends the run here
        status = "refused" if "budget" in str(err).lower() else f"error: {type(err).__name__}"
    finally:
        getattr(env, "cleanup", lambda: None)()
    return {"status": status, "calls": agent.n_calls, "client_cost": agent.cost}


def litellm_loop(url: str, key: str, budget: float | None, calls: int = 40) -> dict:
    import litellm

    litellm.max_budget = budget or 0.0  # the library's own global cap (0: off)
    litellm._current_cost = 0.0
    made = refused = 0
    status = "finished"
    for i in range(calls):
        try:
            litellm.completion(model="openai/smol", api_base=url, api_key=key, max_tokens=96, temperature=0,
                               messages=[{"role": "user", "content": f"Step {i}: describe a sorting algorithm."}],
                               num_retries=0)
            made += 1
        except litellm.BudgetExceededError:
            status = "litellm max_budget"
            break
        except Exception as err:
            refused += 1
            status = "refused" if "budget" in str(err).lower() else f"error: {type(err).__name__}"
            break
    litellm.max_budget = 0.0
    return {"status": status, "calls": made, "refused": refused}


def overhead(direct: str, via: str, key: str, rounds: int) -> dict:
    import httpx

    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "temperature": 0}
    times: dict[str, list[float]] = {"direct": [], "gateway": []}
    with httpx.Client(timeout=120) as http:
        for _ in range(rounds):
            for name, url, model, headers in (("direct", direct, "smollm2-135m", {}),
                                              ("gateway", via, "local-smol", {"authorization": f"Bearer {key}"})):
                t0 = time.perf_counter()
                http.post(f"{url}/chat/completions", json={**body, "model": model}, headers=headers).raise_for_status()
                times[name].append(time.perf_counter() - t0)

    def p99(xs):
        return sorted(xs)[max(0, int(len(xs) * 0.99) - 1)]

    return {"rounds": rounds, "direct_median_ms": statistics.median(times["direct"]) * 1e3,
            "gateway_median_ms": statistics.median(times["gateway"]) * 1e3,
            "median_ratio": statistics.median(times["gateway"]) / statistics.median(times["direct"]),
            "p99_ratio": p99(times["gateway"]) / p99(times["direct"])}


async def _rps(url: str, model: str, headers: dict, n: int) -> float:
    import httpx

    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=n)) as http:
        t0 = time.perf_counter()
        rs = await asyncio.gather(*(http.post(f"{url}/chat/completions", json=body, headers=headers)
                                    for _ in range(n)))
        wall = time.perf_counter() - t0
    assert all(r.status_code == 200 for r in rs), [r.text for r in rs if r.status_code != 200][:2]
    return n / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=2)
    ap.add_argument("--cap", type=float, default=0.3, help="USD per task / per loop")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--json", default=str(HERE / "results" / "gateway.json"))
    args = ap.parse_args()
    import litellm

    from budgetflow import Budget, Ledger, PriceBook
    from budgetflow.budget import create_key
    from budgetflow.gateway import ModelPool, create_app
    from budgetflow.llm import LOCAL_MODELS, LiteLLMModel, VLLMEngine, VLLMServer, prepare

    litellm.register_model({"openai/smol": {"input_cost_per_token": IN_PER_M / 1e6,
                                            "output_cost_per_token": OUT_PER_M / 1e6,
                                            "litellm_provider": "openai", "mode": "chat"}})
    os.environ["MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT"] = "1"
    prices = PriceBook()
    prices.set("openai/smollm2-135m", input_per_million=IN_PER_M, output_per_million=OUT_PER_M)
    prices.set("local/smollm2-135m", cpu_hour=0.10)
    tasks = sorted(p for p in QUIX.iterdir() if (p / "task.json").is_file())[: args.tasks]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, \
            VLLMServer(prepare("smollm2-135m"), "smollm2-135m", device="cpu", max_model_len=2048,
                       extra_args=LOCAL_MODELS["smollm2-135m"].server_args) as server, \
            Ledger(Path(tmp) / "gw.db") as ledger:
        remote = LiteLLMModel("openai/smollm2-135m", prices=prices, api_base=server.base_url, api_key="x")
        local = VLLMEngine("local/smollm2-135m", server.base_url, "smollm2-135m", prices=prices, server=server)
        app = create_app(ledger, ModelPool(llms={"smol": remote, "local-smol": local}))
        with InThread(app) as gw:
            def key(name: str, cap: float) -> str:
                return create_key(ledger, ledger.root(name, Budget(usd=cap)))

            def spent(name: str) -> float:
                return ledger.account(name).balance().committed.usd

            for task in tasks:
                for mode, cap_key, limit in (("mini-swe-agent cost_limit", 100.0, args.cap),
                                             ("mini-swe-agent via gateway key", args.cap, 0.0)):
                    name = f"{mode.split()[-1]}-{task.name}"
                    out = mini_run(gw.url, key(name, cap_key), task, limit, Path(tmp))
                    rows.append({"client": "mini-swe-agent", "limit": mode, "task": task.name, **out,
                                 "spent_usd": spent(name), "cap_usd": args.cap, "x_cap": spent(name) / args.cap})
                    print(f"{mode:34s} {task.name:28s} {out['status']:22s} calls {out['calls']:3d}  "
                          f"{spent(name) / args.cap:5.2f}x cap", flush=True)
            for mode, cap_key, budget in (("litellm max_budget", 100.0, args.cap),
                                          ("litellm via gateway key", args.cap, None)):
                name = mode.replace(" ", "-")
                out = litellm_loop(gw.url, key(name, cap_key), budget)
                rows.append({"client": "litellm", "limit": mode, **out, "spent_usd": spent(name),
                             "cap_usd": args.cap, "x_cap": spent(name) / args.cap})
                print(f"{mode:34s} {'40-call loop':28s} {out['status']:22s} calls {out['calls']:3d}  "
                      f"{spent(name) / args.cap:5.2f}x cap", flush=True)
            k = key("overhead", 100.0)
            lat = overhead(server.base_url, gw.url, k, args.rounds)
            rps_gw = asyncio.run(_rps(gw.url, "local-smol", {"authorization": f"Bearer {k}"}, 64))
            rps_direct = asyncio.run(_rps(server.base_url, "smollm2-135m", {}, 64))
            verified = ledger.verify().ok
    print(f"\noverhead, 1-token calls: gateway/direct median {lat['median_ratio']:.2f}x, p99 {lat['p99_ratio']:.2f}x "
          f"({lat['gateway_median_ms']:.0f} vs {lat['direct_median_ms']:.0f} ms)")
    print(f"64 concurrent 1-token calls: gateway {rps_gw:.1f} req/s, direct {rps_direct:.1f} req/s "
          f"(ratio {rps_gw / rps_direct:.2f}); ledger verified: {verified}")
    result = {"benchmark": "gateway", "model": "smollm2-135m (vLLM CPU)", "cap_usd": args.cap, "caps": rows,
              "overhead": lat, "rps": {"gateway": rps_gw, "direct": rps_direct, "ratio": rps_gw / rps_direct},
              "ledger_verified": verified, **provenance()}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
