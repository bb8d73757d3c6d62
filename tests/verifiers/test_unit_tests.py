"""The unit-test verifier against the real process sandbox and a real SQLite ledger."""

from __future__ import annotations

import pytest

from budgetflow import Budget
from budgetflow.budget import BudgetExceeded
from budgetflow.verifiers import UnitTestVerifier

GOOD = "def add(a, b):\n    return a + b\n"
BAD = "def add(a, b):\n    return a - b\n"


def test_reports_each_test_and_charges_cpu_seconds(sandbox, account):
    v = UnitTestVerifier(sandbox)
    report = v.run(BAD, ["assert add(1, 1) == 2", "assert add(2, 0) == 2", "assert add(0, 0) == 0"], account=account)
    assert report.loaded
    assert report.signature == (False, True, True)
    assert "AssertionError" in report.outcomes[0].error
    spent = account.spent()
    assert spent.calls == 1 and 0 < spent.cpu_seconds <= v.worst_case()["cpu_seconds"]
    assert account.held().cpu_seconds == 0  # the reservation was settled


def test_a_hanging_test_does_not_hide_the_others(sandbox, account):
    v = UnitTestVerifier(sandbox, per_test_timeout_s=0.3)
    report = v.run(GOOD, ["assert add(1, 2) == 3", "while True: pass", "assert add(2, 2) == 4"], account=account)
    assert report.signature == (True, False, True)
    assert report.outcomes[1].error == "timeout"


def test_a_candidate_that_does_not_load_passes_nothing(sandbox, account):
    v = UnitTestVerifier(sandbox)
    report = v.run("def add(a, b) return", ["assert True"], account=account)
    assert not report.loaded and report.passed == 0 and "SyntaxError" in report.load_error


def test_a_crashing_candidate_is_reported_not_raised(sandbox, account):
    v = UnitTestVerifier(sandbox)
    report = v.run("import os\nos._exit(3)\n", ["assert True"], account=account)
    assert not report.loaded and "exit 3" in report.load_error


def test_expressions_record_their_values(sandbox, account):
    report = UnitTestVerifier(sandbox).run(GOOD, ["add(2, 3)", "add('a', 'b')", "add(1, None)"], account=account)
    assert [o.value for o in report.outcomes[:2]] == ["5", "'ab'"]
    assert not report.outcomes[2].passed and report.outcomes[2].error.startswith("TypeError")


def test_refused_before_running_when_the_account_cannot_afford_it(sandbox, ledger):
    poor = ledger.root("poor", Budget(cpu_seconds=1.0))
    v = UnitTestVerifier(sandbox)
    with pytest.raises(BudgetExceeded):
        v.run(GOOD, ["assert add(1, 2) == 3"], account=poor)
    assert poor.spent().calls == 0


def test_usd_priced_runs_charge_money_too(sandbox, ledger):
    acct = ledger.root("priced", Budget(usd=1.0))
    UnitTestVerifier(sandbox, usd_per_cpu_second=0.01).run(GOOD, ["assert add(1, 2) == 3"], account=acct)
    assert 0 < acct.spent().usd <= 0.01 * UnitTestVerifier(sandbox).worst_case()["cpu_seconds"]
