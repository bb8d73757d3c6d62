"""Stress worker: many threads reserving random amounts near the caps, committing, releasing, or abandoning.

Used in-process (threads) and as a separate process (`python -m tests.budget.stress_worker URL SEED THREADS ATTEMPTS`),
it returns exactly what it charged per account, in ledger units, so the test can check nothing was lost or doubled.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from collections import Counter

from budgetflow import Budget, BudgetExceeded, Ledger
from budgetflow.budget._limits import amounts_to_units

RUN_CAPS = Budget(usd=1.0, calls=400, output_tokens=200_000)
TASK_CAPS = Budget(usd=0.4, output_tokens=80_000)
TASKS = [f"task-{i}" for i in range(4)]


def setup_accounts(ledger: Ledger) -> dict:
    run = ledger.root("run", RUN_CAPS)
    return {name: run.child(name, TASK_CAPS) for name in TASKS}


def run_threads(url: str, seed: int, threads: int, attempts: int) -> dict:
    ledger = Ledger(url)
    accounts = setup_accounts(ledger)
    charged: Counter = Counter()
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def worker(worker_seed: int) -> None:
        rng = random.Random(worker_seed)
        for _ in range(attempts):
            name = rng.choice(TASKS)
            # worst cases near the caps: up to 5% of the run's dollars, 10% of a task's tokens
            held = dict(usd=round(rng.uniform(0.001, 0.05), 6), calls=1, output_tokens=rng.randint(100, 8000))
            try:
                r = accounts[name].reserve(**held)
            except BudgetExceeded:
                with lock:
                    outcomes["refused"] += 1
                continue
            roll = rng.random()
            if roll < 0.1:
                r.release()
                actual, kind = {}, "released"
            elif roll < 0.15:
                with r:
                    pass  # left unsettled: charged as reserved
                actual, kind = held, "abandoned"
            else:
                actual = dict(usd=round(held["usd"] * rng.random(), 6), calls=1,
                              output_tokens=rng.randint(0, held["output_tokens"]))
                r.commit(**actual)
                kind = "committed"
            units = amounts_to_units(actual)
            with lock:
                outcomes[kind] += 1
                for dim, u in units.items():
                    charged[f"{name}:{dim}"] += u

    pool = [threading.Thread(target=worker, args=(seed * 1000 + i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    ledger.close()
    return {"charged": dict(charged), "outcomes": dict(outcomes)}


if __name__ == "__main__":
    url, seed, threads, attempts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(run_threads(url, seed, threads, attempts)))
