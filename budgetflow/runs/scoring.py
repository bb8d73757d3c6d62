"""Scoring: whether the selected candidate is really right, by tests the solver never saw (HumanEval's `check`, a
repo task's fail_to_pass/pass_to_pass), or the math answer. Runs after selection, on the task's account under
`<run>-scoring`, which is not part of the run's budget; the report shows it apart."""

from __future__ import annotations

from pydantic import BaseModel

from ..budget import Account
from ..tasks import CodeTask, MathTask, RepoTask
from ..tasks.loaders import normalize_number


class Score(BaseModel):
    solved: bool | None  # None: nothing to score against (no hidden tests) or nothing selected
    detail: str
    spend: dict[str, float] = {}


def score(ctx, task: CodeTask | MathTask | RepoTask, selected: str | None, account: Account) -> Score:
    if isinstance(task, MathTask):
        if selected is None:
            return Score(solved=False, detail=f"no answer, expected {task.answer!r}")
        got = normalize_number(selected)
        return Score(solved=got == task.answer, detail=f"answer {got!r}, expected {task.answer!r}")
    if selected is None:
        return Score(solved=False, detail="no candidate selected")
    before = account.spent()
    if isinstance(task, CodeTask):
        if not task.hidden_tests:
            return Score(solved=None, detail="the task has no hidden tests")
        from ..verifiers.hidden import passes_hidden_tests

        ok = passes_hidden_tests(ctx.scorer, task, selected, account=account)
        detail = "passed the hidden tests" if ok else "failed the hidden tests"
    else:
        ok, detail = _score_repo(ctx, task, selected, account)
    spent = account.spent()
    delta = {k: v - getattr(before, k) for k, v in spent.model_dump().items()}
    return Score(solved=ok, detail=detail, spend={k: v for k, v in delta.items() if v})


def _score_repo(ctx, task: RepoTask, patch: str, account: Account) -> tuple[bool, str]:
    from ..tasks.repo import RepoTaskError, apply_patch_files
    from ..verifiers.repo_tests import RepoTestRunner, repo_files, scoring_files

    try:
        files = apply_patch_files(repo_files(task.repo), patch)
    except RepoTaskError as err:
        return False, f"the selected patch does not apply: {err}"
    runner = RepoTestRunner(ctx.sandbox)
    report = runner.run(scoring_files(task, files), task, [*task.fail_to_pass, *task.pass_to_pass], account=account)
    return report.resolved(task), report.summary(task)

