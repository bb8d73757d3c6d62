"""Scoring: whether a selected answer is really right, by what no solver saw — HumanEval's hidden `check`, a repo
task's fail_to_pass / pass_to_pass on the patched repository, the math answer. One scorer per task kind, registered
under the kind's name; scoring spends (sandbox time) on the account it is given, which a batch run keeps outside
the run's budget."""

from __future__ import annotations

from typing import Any, Callable

from pydantic import BaseModel, Field

from .._registry import Registry
from ..budget import Account
from ..sandbox import Sandbox
from ..tasks import CodeTask, MathTask, RepoTask, kind_of, normalize_number
from ._hidden import passes_hidden_tests
from ._unit_tests import UnitTestVerifier


class Score(BaseModel):
    solved: bool | None  # None: nothing to score against (no hidden tests) or nothing selected
    detail: str
    spend: dict[str, float] = Field(default_factory=dict)  # what scoring itself spent


Scorer = Callable[..., tuple[bool | None, str]]
scorers: Registry[Scorer] = Registry("scorer")


def scorer(kind: str):
    """Register how tasks of `kind` are scored: `fn(task, answer, *, account, sandbox) -> (solved, detail)`."""
    return scorers.register(kind)


def score(task: Any, answer: str | None, *, account: Account, sandbox: Sandbox | None = None) -> Score:
    """Score `answer` for the full `task` (hidden parts included) on `account`."""
    if answer is None:
        return Score(solved=False, detail="nothing selected")
    before = account.spent()
    solved, detail = scorers.get(kind_of(task))(task, answer, account=account, sandbox=sandbox)
    spent = account.spent()
    delta = {k: v - getattr(before, k) for k, v in spent.model_dump().items()}
    return Score(solved=solved, detail=detail, spend={k: v for k, v in delta.items() if v})


@scorer("math")
def _score_math(task: MathTask, answer: str, **_) -> tuple[bool, str]:
    got = normalize_number(answer)
    return got == task.answer, f"answer {got!r}, expected {task.answer!r}"


@scorer("code")
def _score_code(task: CodeTask, answer: str, *, account: Account, sandbox: Sandbox | None) -> tuple[bool | None, str]:
    if not task.hidden_tests:
        return None, "the task has no hidden tests"
    ok = passes_hidden_tests(UnitTestVerifier(sandbox), task, answer, account=account)
    return ok, "passed the hidden tests" if ok else "failed the hidden tests"


@scorer("repo")
def _score_repo(task: RepoTask, patch: str, *, account: Account, sandbox: Sandbox | None) -> tuple[bool, str]:
    from ..tasks import RepoTaskError
    from ..workspace import apply_patch_files, repo_files, scoring_files
    from ._repo_tests import RepoTestRunner

    try:
        files = apply_patch_files(repo_files(task.repo), patch)
    except RepoTaskError as err:
        return False, f"the selected patch does not apply: {err}"
    report = RepoTestRunner(sandbox).run(scoring_files(task, files), task, [*task.fail_to_pass, *task.pass_to_pass],
                                         account=account)
    return report.resolved(task), report.summary(task)
