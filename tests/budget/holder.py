"""A process that holds reservations and then waits to be killed.

`python -m tests.budget.holder URL hold`  — reserves 3 amounts, commits one, prints READY, sleeps.
`python -m tests.budget.holder URL churn` — 8 threads reserving and committing in a loop until killed.
"""

from __future__ import annotations

import random
import sys
import threading
import time

from budgetflow import Budget, BudgetExceeded, Ledger

HELD = [dict(usd=0.11, calls=1), dict(usd=0.07, output_tokens=900), dict(cpu_seconds=2.5)]


def hold(url: str) -> None:
    ledger = Ledger(url)
    acc = ledger.account("run", Budget(usd=1.0)).child("task")
    reservations = [acc.reserve(**amounts) for amounts in HELD]
    acc.reserve(usd=0.05).commit(usd=0.02)
    print("READY " + " ".join(r.id for r in reservations), flush=True)
    time.sleep(600)


def churn(url: str) -> None:
    ledger = Ledger(url)
    acc = ledger.account("run", Budget(usd=5.0)).child("task")

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
    {"hold": hold, "churn": churn}[sys.argv[2]](sys.argv[1])
