"""Sandbox CPU charged on the ledger as the sandbox measured it for the whole run (issue 11 class 7), on every
path, and reserved as the sandbox's provable bound, so the charge always fits the hold."""

from __future__ import annotations

import pytest

from budgetflow import Budget, Ledger
from budgetflow.sandbox import Limits
from budgetflow.verifiers import UnitTestVerifier

SPIN_FOREVER = "import os\nwhile True:\n    os.getpid()\n"
CHILDREN_BURN = '''
import os, time
def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
kids = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        burn(0.8)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
print("all children finished")
'''


@pytest.fixture
def ledger_and_task(tmp_path):
    ledger = Ledger(tmp_path / "ledger.db")
    yield ledger, ledger.root("run", Budget(cpu_seconds=100)).child("task")
    ledger.close()


def test_a_run_killed_by_the_wall_clock_is_charged_the_cpu_it_burned(sandbox, ledger_and_task):
    """issue 11 class 7: a run killed by the wall-clock timeout was charged ~0 CPU-seconds (its reaped status was
    discarded)."""
    ledger, task = ledger_and_task
    verifier = UnitTestVerifier(sandbox, limits=Limits(timeout_s=1.5, cpu_s=30))
    report = verifier.run(SPIN_FOREVER, ["assert True"], account=task)
    assert report.killed_by == "timeout"
    charged = task.spent().cpu_seconds
    assert charged >= 0.25  # ~1.5 s of one busy CPU on an idle machine; main charged ~0
    assert charged <= verifier.worst_case()["cpu_seconds"] and not ledger.overruns() and ledger.verify().ok


def test_the_cpu_limit_binds_the_whole_run_and_is_charged_in_full(sandbox, ledger_and_task):
    """issue 11 class 7 (with issue 16 class 4): four children burning 0.8 s each under cpu_s=1 ran to the end, 3.2
    CPU-seconds, and the ledger clamped the charge to a reservation sized per process (2.0)."""
    ledger, task = ledger_and_task
    verifier = UnitTestVerifier(sandbox, limits=Limits(timeout_s=20, cpu_s=1))
    report = verifier.run(CHILDREN_BURN, ["assert True"], account=task)
    assert report.killed_by == "cpu"  # the whole run, not each process, was held to one CPU-second
    charged = task.spent().cpu_seconds
    assert 0.9 <= charged <= verifier.worst_case()["cpu_seconds"]
    assert not ledger.overruns() and ledger.verify().ok


def test_the_reservation_is_the_sandboxs_bound(sandbox):
    limits = Limits(timeout_s=3, cpu_s=2)
    verifier = UnitTestVerifier(sandbox, limits=limits)
    assert verifier.worst_case()["cpu_seconds"] == pytest.approx(sandbox.max_cpu_seconds(limits))
    assert sandbox.max_cpu_seconds(limits) >= limits.cpu_s
