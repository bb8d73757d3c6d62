"""Ledger benchmark: reserve+commit latency and metered calls/s with 64 concurrent workers, on SQLite and
PostgreSQL, next to the same loops doing plain INSERTs (the baseline: what one durable write costs there).

    python bench/bench_ledger.py [--calls 2000] [--concurrent-calls 4000] [--json bench/results/ledger.json]

Prints a table and writes JSON. Numbers are ratios against the baseline measured in the same run: the machines are
shared and noisy, absolute times are not comparable between runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from budgetflow import Budget, Ledger
from provenance import provenance
from budgetflow.devtools import TemporaryPostgres


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e3, ordered[int(0.99 * (len(ordered) - 1))] * 1e3


def _baseline_table(ledger: Ledger) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_plain (id BIGINT, payload TEXT)"))


def plain_insert(ledger: Ledger, lock: threading.Lock | None):
    """One baseline 'call': two single-INSERT transactions (a reserve and a commit each write once)."""
    def call(i: int) -> None:
        for _ in range(2):
            with (lock or _NULL), ledger.engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO bench_plain (id, payload) VALUES (%d, 'x')" % i)
    return call


class _Null:
    def __enter__(self): ...
    def __exit__(self, *a): ...


_NULL = _Null()


def metered(ledger: Ledger):
    acc = ledger.root("bench-run", Budget(usd=1e6, calls=10**9)).child("bench-task").child("bench-agent")

    def call(i: int) -> None:
        with acc.reserve(usd=0.002, input_tokens=500, output_tokens=1000, calls=1) as r:
            r.commit(usd=0.0007, input_tokens=500, output_tokens=310, calls=1)
    return call


def latency(call, n: int) -> tuple[float, float]:
    samples = []
    for i in range(n):
        t = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - t)
    return _percentiles(samples)


def throughput(call, total: int, workers: int = 64) -> float:
    counter = iter(range(total))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            call(i)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total / (time.perf_counter() - start)


def bench_backend(name: str, url: str, calls: int, concurrent_calls: int) -> dict:
    ledger = Ledger(url)
    _baseline_table(ledger)
    # SQLite allows one writer: the fair baseline serialises in-process too, as the ledger does
    base_lock = threading.Lock() if ledger.backend == "sqlite" else None
    base_call, ledger_call = plain_insert(ledger, base_lock), metered(ledger)
    for call in (base_call, ledger_call):  # warm up connections and statement caches
        latency(call, 50)
    base_med, base_p99 = latency(base_call, calls)
    led_med, led_p99 = latency(ledger_call, calls)
    base_tput = throughput(base_call, concurrent_calls)
    led_tput = throughput(ledger_call, concurrent_calls)
    report = ledger.verify()
    ledger.close()
    return {
        "backend": name,
        "baseline_median_ms": base_med, "baseline_p99_ms": base_p99,
        "reserve_commit_median_ms": led_med, "reserve_commit_p99_ms": led_p99,
        "baseline_calls_per_s_64w": base_tput, "metered_calls_per_s_64w": led_tput,
        "latency_ratio_vs_baseline": led_med / base_med, "throughput_ratio_vs_baseline": led_tput / base_tput,
        "ledger_entries": report.entries, "ledger_verified": report.ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls for the latency figures")
    parser.add_argument("--concurrent-calls", type=int, default=4000, help="calls spread over 64 workers")
    parser.add_argument("--json", type=Path, default=Path("bench/results/ledger.json"))
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    console = Console(width=150)  # a wide table reads better in logs than a wrapped one
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        with console.status("SQLite..."):
            results.append(bench_backend("sqlite", f"sqlite:///{tmp}/bench.db", args.calls, args.concurrent_calls))
        if not args.skip_postgres:
            with console.status("PostgreSQL (temporary server on loopback)..."), TemporaryPostgres() as pg:
                results.append(bench_backend("postgresql", pg.url, args.calls, args.concurrent_calls))

    table = Table(title="ledger: reserve+commit vs two plain INSERT transactions (baseline), same run")
    for col in ("backend", "median ms", "p99 ms", "baseline median ms", "calls/s (64 workers)",
                "baseline calls/s", "latency ×baseline", "throughput ×baseline"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            r["backend"], f"{r['reserve_commit_median_ms']:.3f}", f"{r['reserve_commit_p99_ms']:.3f}",
            f"{r['baseline_median_ms']:.3f}", f"{r['metered_calls_per_s_64w']:,.0f}",
            f"{r['baseline_calls_per_s_64w']:,.0f}", f"{r['latency_ratio_vs_baseline']:.2f}",
            f"{r['throughput_ratio_vs_baseline']:.2f}",
        )
    console.print(table)
    console.print("targets: ≤ 1 ms median reserve+commit on SQLite, ≥ 1,000 metered calls/s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    out = {"benchmark": "ledger", **provenance(), "results": results}
    args.json.write_text(json.dumps(out, indent=2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
