"""Crash safety: a process killed with SIGKILL while holding reservations; the next open settles them."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from budgetflow import Ledger
from budgetflow.budget._limits import DIMENSIONS

from ..conftest import REPO, run_cli
from .holder import HELD, LEASE_TTL_S


def _start(url: str, mode: str) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.budget.holder", url, mode],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("READY"), proc.stderr.read()[-3000:]
    return proc, line.split()[1:]


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(LEASE_TTL_S * 1.2)  # PostgreSQL: a dead owner's heartbeat must age past its ttl first


def test_sigkill_holding_reservations_then_recover_on_open(ledger_url):
    proc, held_ids = _start(ledger_url, "hold")
    _kill(proc)
    ledger = Ledger(ledger_url)
    assert sorted(r.reservation_id for r in ledger.recovered) == sorted(held_ids)
    task = ledger.account("task")
    spent = task.spent()
    # charged conservatively: in full, as reserved, plus the one real commit of $0.02
    assert spent.usd == pytest.approx(0.11 + 0.07 + 0.02)
    assert spent.calls == 1 and spent.output_tokens == 900 and spent.cpu_seconds == pytest.approx(2.5)
    assert task.held() == type(task.held())()  # nothing left held
    recover_entries = [e for e in ledger.entries() if e.kind == "recover"]
    assert len(recover_entries) == len(HELD)
    assert all("died holding this reservation; charged as reserved" in e.note for e in recover_entries)
    assert ledger.verify().ok
    ledger.close()
    # recovery happens once: the next open finds nothing to do
    again = Ledger(ledger_url)
    assert again.recovered == [] and again.account("task").spent() == spent
    again.close()


def test_live_owner_is_never_robbed_and_cli_recovers_after_death(ledger_url):
    proc, held_ids = _start(ledger_url, "hold")
    try:
        other = Ledger(ledger_url)
        assert other.recovered == []  # its owner is alive: its reservations stay open
        assert other.account("task").held().usd == pytest.approx(0.18)
        other.close()
    finally:
        _kill(proc)
    result = run_cli("ledger", "recover", "--db", ledger_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("recovered ") == len(held_ids) and "charged as reserved" in result.stdout
    ledger = Ledger(ledger_url)
    assert ledger.account("task").held().usd == 0 and ledger.verify().ok
    ledger.close()


@pytest.mark.parametrize("delay", [0.4, 1.1])
def test_sigkill_mid_run_leaves_a_consistent_ledger(ledger_url, delay):
    proc, _ = _start(ledger_url, "churn")
    time.sleep(delay * random.uniform(0.8, 1.2))
    _kill(proc)
    ledger = Ledger(ledger_url)
    report = ledger.verify()
    assert report.ok, report.problems
    for bal in ledger.accounts():
        assert all(v == 0 for v in bal.reserved_units.values())  # every open reservation settled
        for dim in DIMENSIONS:
            cap = bal.cap_units[dim]
            assert cap is None or bal.committed_units[dim] <= cap
    assert len(ledger.entries()) > 10  # the run did real work before it died
    ledger.close()
