"""SWE-task tests: the real process sandbox, real SQLite ledgers, real git, the real QuixBugs wheel and a real
project's sdist (inflection 0.5.1). Expensive things are built once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from budgetflow import Budget, Ledger
from budgetflow.verifiers import RepoTestRunner

REPO = Path(__file__).resolve().parents[2]
SWE_PROJECT = ("inflection", "0.5.1")  # the smallest pinned project: 455 tests in ~0.5 s


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "budgetflow", *args], capture_output=True, text=True, check=False,
                          timeout=timeout, cwd=REPO, env={**os.environ, "COLUMNS": "200"})


@pytest.fixture
def account(ledger):
    return ledger.root("run", Budget(cpu_seconds=500.0)).child("task")


@pytest.fixture(scope="session")
def session_ledger(tmp_path_factory):
    led = Ledger(tmp_path_factory.mktemp("swe-ledger") / "ledger.db")
    yield led
    led.close()


@pytest.fixture(scope="session")
def runner(sandbox):
    return RepoTestRunner(sandbox)


@pytest.fixture(scope="session")
def quixbugs(sandbox):
    """All QuixBugs tasks, from the cache (built there once if missing: about a minute)."""
    from budgetflow.swe import load_quixbugs

    return load_quixbugs(sandbox=sandbox)


@pytest.fixture(scope="session")
def made_tasks(tmp_path_factory):
    """Tasks made by the real CLI from inflection's sdist (cached download) into a fresh directory."""
    from budgetflow.swe import sdist_path
    from budgetflow.tasks import load_repo_tasks

    out = tmp_path_factory.mktemp("made")
    proc = run_cli("swe", "make-task", str(sdist_path(*SWE_PROJECT)), "--out", str(out), "--count", "2",
                   "--seed", "0", "--max-tries", "16")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return load_repo_tasks(out), proc


def parallel(fn, items, workers: int = 2):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))
