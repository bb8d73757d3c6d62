"""Model-layer benchmark on the real vLLM server (SmolLM2-135M on the CPU by default).

1. Native n=8 sampling (one request, shared prompt prefix) against 8 sequential single calls: output tokens/s.
2. Metering overhead: a metered `generate` (token count + reservation + engine-time meter + commit) against the
   same request sent unmetered, straight to the server.

    python bench/bench_llm.py [--model smollm2-135m|qwen2.5-coder-1.5b] [--rounds 3] [--json PATH]

Ratios are against the baseline in the same run; absolute numbers depend on the (shared, noisy) machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from provenance import provenance
from budgetflow import Budget, Ledger, PriceBook
from budgetflow.llm import VLLMEngine, VLLMServer, prepare

PROMPT = "def quicksort(items):\n    \"\"\"Sort a list of numbers.\"\"\"\n"


def sampling(engine: VLLMEngine, account, rounds: int, max_tokens: int) -> dict:
    native, sequential = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        gen = engine.generate(PROMPT, account=account, n=8, max_tokens=max_tokens, temperature=1.0)
        native.append(gen.usage.output_tokens / (time.perf_counter() - start))
        start, tokens = time.perf_counter(), 0
        for _ in range(8):
            tokens += engine.generate(PROMPT, account=account, n=1, max_tokens=max_tokens,
                                      temperature=1.0).usage.output_tokens
        sequential.append(tokens / (time.perf_counter() - start))
    n8, seq = statistics.median(native), statistics.median(sequential)
    return {"native_n8_tokens_per_s": n8, "sequential_8x1_tokens_per_s": seq, "speedup": n8 / seq}


def overhead(engine: VLLMEngine, account, calls: int) -> dict:
    client = httpx.Client(timeout=120)
    body = {"model": engine.served_model, "prompt": PROMPT, "max_tokens": 1, "temperature": 0.0}

    def unmetered() -> None:
        client.post(f"{engine.base_url}/completions", json=body).raise_for_status()

    def metered() -> None:
        engine.generate(PROMPT, account=account, max_tokens=1)

    for fn in (unmetered, metered):  # warm up
        fn()
    plain, meter = [], []
    for _ in range(calls):  # interleaved, so drift in machine load hits both alike
        for fn, sink in ((unmetered, plain), (metered, meter)):
            start = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - start)
    p, m = statistics.median(plain) * 1e3, statistics.median(meter) * 1e3
    return {"unmetered_ms": p, "metered_ms": m, "overhead_ms": m - p, "ratio": m / p}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--overhead-calls", type=int, default=40)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, default=Path("bench/results/llm.json"))
    args = parser.parse_args()
    console = Console(width=150)
    prices = PriceBook()
    prices.set(f"local/{args.model}", cpu_hour=0.05, gpu_hour=3.0)
    with console.status(f"starting vLLM with {args.model}..."):
        server = VLLMServer(prepare(args.model), args.model, device=args.device, max_model_len=2048).start()
    try:
        engine = VLLMEngine(f"local/{args.model}", server.base_url, args.model, prices=prices, server=server,
                            device=server.device)
        ledger = Ledger("sqlite://")
        account = ledger.root("bench", Budget(usd=100))
        with console.status("n=8 native vs 8 sequential..."):
            s = sampling(engine, account, args.rounds, args.max_tokens)
        with console.status("metering overhead..."):
            o = overhead(engine, account, args.overhead_calls)
        verified = ledger.verify().ok
    finally:
        server.stop()
    result = {"benchmark": "llm", "model": args.model, "device": server.device, "sampling": s, "metering": o,
              "ledger_verified": verified}
    table = Table(title=f"model layer on {args.model} ({server.device}), same server, same run")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("baseline", justify="right")
    table.add_column("ratio", justify="right")
    table.add_row("output tokens/s, n=8 native vs 8 sequential calls", f"{s['native_n8_tokens_per_s']:.1f}",
                  f"{s['sequential_8x1_tokens_per_s']:.1f}", f"{s['speedup']:.2f}x (target ≥ 3x)")
    table.add_row("ms per 1-token call, metered vs unmetered", f"{o['metered_ms']:.1f}", f"{o['unmetered_ms']:.1f}",
                  f"{o['ratio']:.2f}x (+{o['overhead_ms']:.1f} ms)")
    console.print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    result = {**result, **provenance()}
    args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
