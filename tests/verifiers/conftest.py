"""Verifier tests: the session's real sandbox and SQLite ledger (tests/conftest.py), under a CPU-second budget."""

from __future__ import annotations

import pytest

from budgetflow import Budget


@pytest.fixture
def account(ledger):
    return ledger.root("run", Budget(cpu_seconds=100.0)).child("task")
