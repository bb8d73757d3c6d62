"""The invariant under load: committed + reserved never exceeds any cap, on any account, at any moment —
64 threads in one process, and 4 processes sharing one SQLite file or one PostgreSQL database."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter

import pytest

from budgetflow import Ledger
from budgetflow.budget._limits import DIMENSIONS

from ..conftest import REPO
from .stress_worker import TASKS, run_threads, setup_accounts


class InvariantMonitor:
    """Polls every account's balances from its own connection while the load runs."""

    def __init__(self, url: str):
        self.ledger = Ledger(url, recover=False)
        self.samples = 0
        self.violations: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for bal in self.ledger.accounts():
                for dim in DIMENSIONS:
                    cap = bal.cap_units[dim]
                    used = bal.committed_units[dim] + bal.reserved_units[dim]
                    if cap is not None and used > cap:
                        self.violations.append(f"{bal.name}.{dim}: {used} > cap {cap}")
            self.samples += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.ledger.close()


def _check_final(url: str, results: list[dict]) -> None:
    charged: Counter = Counter()
    outcomes: Counter = Counter()
    for r in results:
        charged.update(r["charged"])
        outcomes.update(r["outcomes"])
    ledger = Ledger(url)
    assert not ledger.recovered
    balances = {b.name: b for b in ledger.accounts()}
    for dim in DIMENSIONS:
        # nothing lost, nothing charged twice: the ledger holds exactly what the workers charged
        for name in TASKS:
            assert balances[name].committed_units[dim] == charged.get(f"{name}:{dim}", 0), (name, dim)
            assert balances[name].reserved_units[dim] == 0
        assert balances["run"].committed_units[dim] == sum(charged.get(f"{n}:{dim}", 0) for n in TASKS)
    for bal in balances.values():
        for dim in DIMENSIONS:
            cap = bal.cap_units[dim]
            assert cap is None or bal.committed_units[dim] <= cap
    # the load really pressed against the caps
    assert outcomes["refused"] > 0 and outcomes["committed"] > 50
    run_usd = balances["run"].committed_units["usd"]
    assert run_usd > 0.6 * balances["run"].cap_units["usd"]
    report = ledger.verify()
    assert report.ok, report.problems
    ledger.close()


def _spawn_workers(url: str, processes: int, threads: int, attempts: int) -> list[dict]:
    setup = Ledger(url)
    setup_accounts(setup)  # create the accounts once, before the race
    setup.close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.budget.stress_worker", url, str(seed), str(threads), str(attempts)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for seed in range(1, processes + 1)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.mark.timeout(300)
def test_64_threads_never_overspend(ledger_url):
    setup = Ledger(ledger_url)
    setup_accounts(setup)
    setup.close()
    with InvariantMonitor(ledger_url) as monitor:
        result = run_threads(ledger_url, seed=7, threads=64, attempts=12)
    assert monitor.samples > 0 and not monitor.violations, monitor.violations[:5]
    _check_final(ledger_url, [result])


@pytest.mark.timeout(300)
def test_4_processes_share_one_ledger(ledger_url):
    """4 processes × 8 threads on one SQLite file, or on one PostgreSQL database."""
    with InvariantMonitor(ledger_url) as monitor:
        results = _spawn_workers(ledger_url, processes=4, threads=8, attempts=25)
    assert monitor.samples > 0 and not monitor.violations, monitor.violations[:5]
    _check_final(ledger_url, results)
