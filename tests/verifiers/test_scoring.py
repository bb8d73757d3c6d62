"""Scoring (budgetflow.verifiers.score) a repository task: the selected patch is applied to a copy of the repo and judged by the task's
fail_to_pass / pass_to_pass tests in the sandbox, on the scoring account (never the run's)."""

from __future__ import annotations

import subprocess

from budgetflow import Budget
from budgetflow.verifiers import score
from budgetflow.tasks import MathTask, RepoTask
from budgetflow.workspace import repo_files, unified_diff

CALC = 'def add(a, b):\n    """Return the sum of a and b."""\n    return a - b\n\n\ndef double(x):\n    return 2 * x\n'
TESTS = ("from calc import add, double\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
         "def test_double():\n    assert double(4) == 8\n")


def _repo(root) -> RepoTask:
    root.mkdir(parents=True)
    (root / "calc.py").write_text(CALC)
    (root / "test_calc.py").write_text(TESTS)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", str(root)]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "buggy add"], check=True)
    return RepoTask(instance_id="tiny__calc-1", project="tiny", repo=str(root), issue="add subtracts",
                    fail_to_pass=("test_calc.py::test_add",), pass_to_pass=("test_calc.py::test_double",))


def test_repo_and_math_scoring(tmp_path, sandbox, ledger):
    task = _repo(tmp_path / "repo")
    before = repo_files(task.repo)
    fixed = {**before, "calc.py": CALC.replace("a - b", "a + b").encode()}
    broke = {**before, "calc.py": CALC.replace("2 * x", "3 * x").encode()}
    account = ledger.root("r-scoring", Budget()).child("r-scoring/tiny")
    good = score(task, unified_diff(before, fixed), account=account, sandbox=sandbox)
    assert good.solved is True and "resolved" in good.detail and good.spend["cpu_seconds"] > 0
    bad = score(task, unified_diff(before, broke), account=account, sandbox=sandbox)
    assert bad.solved is False and "fail_to_pass 0/1, pass_to_pass 0/1" in bad.detail
    junk = score(task, "diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-x\n+y\n",
                 account=account, sandbox=sandbox)
    assert junk.solved is False and "does not apply" in junk.detail
    assert score(task, None, account=account, sandbox=sandbox).solved is False
    assert account.spent().calls == 2  # two test runs: the junk patch never reached the sandbox
    math = MathTask(id="m", question="?", answer="7")
    assert score(math, "7.0", account=account).solved and not score(math, "8", account=account).solved
