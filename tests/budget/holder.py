"""A process that holds reservations and then waits to be killed.

`python -m tests.budget.holder URL hold`  — reserves 3 amounts, commits one, prints READY, sleeps.
`python -m tests.budget.holder URL churn` — 8 threads reserving and committing in a loop until killed.
`python -m tests.budget.holder URL fork-hold` — holds reservations, forks a child that never execs, sleeps.
"""

from __future__ import annotations

import random
import sys
import threading
import time

from budgetflow import Budget, BudgetExceeded, Ledger

# PostgreSQL: how long others wait after this process stops answering before they may recover its reservations
LEASE_TTL_S = 1.0
HELD = [dict(usd=0.11, calls=1), dict(usd=0.07, output_tokens=900), dict(cpu_seconds=2.5)]


def hold(url: str, ttl: str | None = None) -> None:
    ledger = Ledger(url, lease_ttl_s=float(ttl) if ttl else LEASE_TTL_S)
    acc = ledger.root("run", Budget(usd=1.0)).child("task")
    reservations = [acc.reserve(**amounts) for amounts in HELD]
    acc.reserve(usd=0.05).commit(usd=0.02)
    print("READY " + " ".join(r.id for r in reservations), flush=True)
    time.sleep(600)


def fork_hold(url: str) -> None:
    """Hold reservations, then fork a child that never execs and outlives us; prints READY ids... child-pid."""
    import os

    ledger = Ledger(url, lease_ttl_s=LEASE_TTL_S)
    acc = ledger.root("run", Budget(usd=1.0)).child("task")
    reservations = [acc.reserve(**amounts) for amounts in HELD]
    child = os.fork()
    if child == 0:
        time.sleep(120)
        os._exit(0)
    print("READY " + " ".join(r.id for r in reservations) + f" {child}", flush=True)
    time.sleep(600)


def churn(url: str) -> None:
    ledger = Ledger(url, lease_ttl_s=LEASE_TTL_S)
    acc = ledger.root("run", Budget(usd=5.0)).child("task")

    def loop(seed: int) -> None:
        rng = random.Random(seed)
        while True:
            try:
                r = acc.reserve(usd=rng.uniform(0.001, 0.01), calls=1)
            except BudgetExceeded:
                time.sleep(0.001)
                continue
            r.commit(usd=rng.uniform(0, 0.001), calls=1)

    for i in range(8):
        threading.Thread(target=loop, args=(i,), daemon=True).start()
    print("READY", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    {"hold": hold, "churn": churn, "fork-hold": fork_hold}[sys.argv[2]](sys.argv[1], *sys.argv[3:])
