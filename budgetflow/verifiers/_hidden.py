"""Hidden-test scoring: for reports only. Nothing in search/ or in selection may call this — strategies are handed
`task.public()`, which has no hidden tests, and this module refuses a task without them."""

from __future__ import annotations

from ..budget import Account
from ..tasks import CodeTask
from ._code import program_for
from ._unit_tests import UnitTestVerifier


class HiddenTestsMissing(ValueError):
    """Scoring was asked for a task whose hidden tests were stripped (a public view of it)."""


def passes_hidden_tests(verifier: UnitTestVerifier, task: CodeTask, completion: str, *, account: Account) -> bool:
    """Whether `completion` passes the task's hidden tests (HumanEval's `check`), run as one test program."""
    if not task.hidden_tests:
        raise HiddenTestsMissing(f"{task.id}: no hidden tests (was it the public view from task.public()?)")
    report = verifier.run(program_for(task, completion), [task.hidden_tests], account=account)
    return report.all_passed
