"""Task schemas: what a strategy needs to attempt a task, and — kept apart — what only the scorer may see."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CodeTask(BaseModel):
    """A function to complete. `visible_tests` may guide selection; `hidden_tests` are for final scoring only."""

    model_config = ConfigDict(frozen=True)

    id: str
    prompt: str  # the code the model continues (signature + docstring)
    entry_point: str
    visible_tests: tuple[str, ...] = ()  # one assert per item, e.g. "assert f(1) == 2"
    hidden_tests: str = ""  # a test program (HumanEval's `check`), never shown to selection

    def public(self) -> CodeTask:
        """The same task without hidden tests: what a search strategy is handed."""
        return self.model_copy(update={"hidden_tests": ""})


class MathTask(BaseModel):
    """A word problem with a numeric answer."""

    model_config = ConfigDict(frozen=True)

    id: str
    question: str
    answer: str  # the expected final answer, normalised (e.g. "18")


class RepoTask(BaseModel):
    """An SWE-style task: a repository (a directory, usually a git checkout — never modified by budgetflow), an issue,
    a test command, the tests that must go from failing to passing and the ones that must keep passing.

    Test ids are pytest node ids relative to the repo root (e.g. "tests/test_gcd.py::test_gcd[1]")."""

    model_config = ConfigDict(frozen=True)

    instance_id: str  # unique, SWE-bench style: "<project>__<name>"
    project: str  # where it comes from, e.g. "quixbugs", "more-itertools"
    repo: str  # path of the directory holding the code at the buggy state
    issue: str  # the problem statement the solver is given
    test_command: tuple[str, ...] = ("python3", "-m", "pytest", "-q", "-p", "no:cacheprovider")
    fail_to_pass: tuple[str, ...]  # must fail before the fix and pass after it
    pass_to_pass: tuple[str, ...] = ()  # must keep passing
    hidden_tests: bool = True  # whether fail_to_pass may be shown to the solver (False) or only to the scorer (True)
