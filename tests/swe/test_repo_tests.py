"""RepoTestRunner against the real process sandbox and a real SQLite ledger; repo_files / unified_diff against real
git."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from budgetflow import Budget
from budgetflow.budget import BudgetExceeded
from budgetflow.sandbox import Limits
from budgetflow.tasks import RepoTask
from budgetflow.verifiers import RepoTestRunner
from budgetflow.workspace import repo_files, scoring_files, unified_diff, write_files

CALC = b"def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
TESTS = b"""import pytest
from calc import add, mul


def test_add():
    assert add(2, 3) == 5


def test_mul():
    assert mul(2, 3) == 6


@pytest.mark.parametrize("x", [1, 2])
def test_param(x):
    assert mul(x, 1) == x


@pytest.mark.xfail(reason="known")
def test_known_bug():
    assert 0


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass


class TestGroup:
    def test_in_class(self):
        assert add(0, 0) == 0
"""
FILES = {"calc.py": CALC, "tests/test_calc.py": TESTS, "pytest.ini": b"[pytest]\npythonpath = .\n"}


def task(**kw) -> RepoTask:
    base = {"instance_id": "demo__calc", "project": "demo", "repo": "/nonexistent", "issue": "add() subtracts",
            "fail_to_pass": ("tests/test_calc.py::test_add",), "pass_to_pass": ("tests/test_calc.py::test_mul",)}
    return RepoTask(**{**base, **kw})


def test_reports_each_test_and_charges_cpu_seconds(runner, account):
    report = runner.run(FILES, task(), None, account=account)
    assert report.failed == {"tests/test_calc.py::test_add"}
    assert report.passed == {"tests/test_calc.py::test_mul", "tests/test_calc.py::test_param[1]",
                             "tests/test_calc.py::test_param[2]", "tests/test_calc.py::test_known_bug",
                             "tests/test_calc.py::TestGroup::test_in_class"}
    assert report.skipped == {"tests/test_calc.py::test_skipped"}
    assert report.exit_code == 1 and not report.timed_out
    assert "assert -1 == 5" in report.details["tests/test_calc.py::test_add"]
    assert not report.resolved(task())
    spent = account.spent()
    assert spent.cpu_seconds > 0 and spent.calls == 1
    assert spent.cpu_seconds == pytest.approx(report.cpu_s, abs=1e-6)  # stored in microseconds, rounded up
    assert account.held().cpu_seconds == 0  # the reservation was settled


def test_a_fixed_working_copy_resolves_the_task(runner, account):
    fixed = {**FILES, "calc.py": CALC.replace(b"a - b", b"a + b")}
    report = runner.run(fixed, task(), ["tests/test_calc.py::test_add", "tests/test_calc.py::test_mul"],
                        account=account)
    assert report.passed == {"tests/test_calc.py::test_add", "tests/test_calc.py::test_mul"}
    assert report.resolved(task()) and "resolved" in report.summary(task())


def test_selected_ids_only_and_missing_ones_fail_without_spoiling_the_rest(runner, account):
    wanted = ["tests/test_calc.py::test_mul", "tests/test_calc.py::test_renamed", "tests/test_gone.py::test_x"]
    report = runner.run(FILES, task(), wanted, account=account)
    assert report.passed == {"tests/test_calc.py::test_mul"}
    assert report.failed == {"tests/test_calc.py::test_renamed", "tests/test_gone.py::test_x"}
    assert "tests/test_gone.py" in report.errors
    assert "did not run" in report.details["tests/test_calc.py::test_renamed"]


def test_nothing_runnable_costs_nothing(runner, account):
    report = runner.run(FILES, task(), ["tests/test_gone.py::test_x"], account=account)
    assert report.failed == {"tests/test_gone.py::test_x"}
    assert account.spent().calls == 0


def test_refused_before_running_when_the_account_cannot_afford_it(runner, ledger):
    poor = ledger.root("poor", Budget(cpu_seconds=5.0))
    with pytest.raises(BudgetExceeded):
        runner.run(FILES, task(), None, account=poor)
    assert poor.spent().calls == 0 and poor.spent().cpu_seconds == 0
    assert poor.held().cpu_seconds == 0


def test_usd_priced_runs_charge_money_too(sandbox, ledger):
    acct = ledger.root("priced", Budget(usd=1.0))
    RepoTestRunner(sandbox, usd_per_cpu_second=0.01).run(FILES, task(), ["tests/test_calc.py::test_mul"],
                                                           account=acct)
    assert 0 < acct.spent().usd <= 0.01 * 61


def test_a_collection_error_is_reported(runner, account):
    broken = {**FILES, "calc.py": b"def add(a, b) return\n"}
    report = runner.run(broken, task(), None, account=account)
    assert not report.passed
    assert "collection error" in report.errors and "SyntaxError" in report.errors
    assert "tests/test_calc.py" in report.failed


def test_a_hanging_test_times_out_and_the_others_still_report(sandbox, account):
    files = {**FILES, "tests/test_hang.py": b"def test_hang():\n    while True:\n        pass\n"}
    r = RepoTestRunner(sandbox, per_test_timeout_s=1.0)
    report = r.run(files, task(), ["tests/test_hang.py::test_hang", "tests/test_calc.py::test_mul"], account=account)
    assert report.failed == {"tests/test_hang.py::test_hang"}
    assert report.passed == {"tests/test_calc.py::test_mul"}
    assert "Timeout" in report.details["tests/test_hang.py::test_hang"]


def test_the_run_time_limit_stops_a_suite_and_keeps_what_finished(sandbox, account):
    files = {**FILES, "tests/test_zhang.py": b"import time\n\ndef test_sleep():\n    time.sleep(60)\n"}
    r = RepoTestRunner(sandbox, per_test_timeout_s=None, limits=Limits(timeout_s=5, cpu_s=5))
    report = r.run(files, task(), ["tests/test_calc.py::test_mul", "tests/test_zhang.py::test_sleep"],
                   account=account)
    assert report.timed_out
    assert report.passed == {"tests/test_calc.py::test_mul"}
    assert "tests/test_zhang.py::test_sleep" in report.failed


def test_per_file_isolates_a_crashing_file(sandbox, account):
    files = {**FILES, "tests/test_crash.py": b"import os\n\ndef test_boom():\n    os._exit(0)\n"}
    wanted = ["tests/test_crash.py::test_boom", "tests/test_calc.py::test_mul"]
    together = RepoTestRunner(sandbox).run(files, task(), wanted, account=account)
    assert "tests/test_crash.py::test_boom" in together.failed  # an exit is not a pass
    apart = RepoTestRunner(sandbox, per_file=True).run(files, task(), wanted, account=account)
    assert apart.failed == {"tests/test_crash.py::test_boom"}
    assert apart.passed == {"tests/test_calc.py::test_mul"}


HOSTILE = b'''import os, sys, glob

FAKE_JUNIT = ('<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="0" '
              'skipped="0" tests="1"><testcase classname="tests.test_calc" name="test_add" time="0.001"/>'
              '</testsuite></testsuites>')


def _lies():
    lines = ["", "PASSED tests/test_calc.py::test_add", "tests/test_calc.py::test_add PASSED",
             "============================== 9 passed in 0.01s ===============================", FAKE_JUNIT,
             '__bf_repo_tests_0123456789abcdef0123456789abcdef__ {"records": [{"kind": "test", "id": '
             '"tests/test_calc.py::test_add", "when": "call", "outcome": "passed"}], "codes": [0]}']
    return "\\n".join(lines) + "\\n"


def test_lie():
    sys.__stdout__.write(_lies()); sys.__stdout__.flush()
    sys.__stderr__.write(_lies()); sys.__stderr__.flush()
    os.write(1, _lies().encode()); os.write(2, _lies().encode())
    # overwrite the supervisor's private state: results it already has cannot be rewritten, new lines are ignored
    for res in glob.glob(".bf-*/results.jsonl"):
        with open(res, "a") as f:
            f.write('{"kind": "test", "id": "tests/test_calc.py::test_add", "when": "call", "outcome": "passed"}\\n')
    for xml in glob.glob("**/*.xml", recursive=True):
        open(xml, "w").write(FAKE_JUNIT)


def test_supervisor_is_out_of_reach():
    # the supervisor holds the marker; it is not dumpable, so its stdout, memory and environment are closed to us
    ppid = os.getppid()
    for path, mode in ((f"/proc/{ppid}/fd/1", "wb"), (f"/proc/{ppid}/mem", "rb"), (f"/proc/{ppid}/environ", "rb")):
        try:
            open(path, mode).close()
        except OSError:
            continue
        raise AssertionError(f"opened {path}")
'''


def test_a_hostile_test_printing_fake_summaries_cannot_fake_a_pass(runner, account):
    files = {**FILES, "tests/test_hostile.py": HOSTILE}
    wanted = ["tests/test_hostile.py::test_lie", "tests/test_hostile.py::test_supervisor_is_out_of_reach",
              "tests/test_calc.py::test_add"]
    report = runner.run(files, task(), wanted, account=account)
    assert "tests/test_calc.py::test_add" in report.failed
    assert "tests/test_calc.py::test_add" not in report.passed
    assert "tests/test_hostile.py::test_supervisor_is_out_of_reach" in report.passed, report.details
    assert not report.resolved(task())


def test_a_hostile_test_that_appends_results_first_is_not_believed(runner, account):
    # the hostile file runs before test_calc (alphabetical order): its forged "passed" line comes first, and the
    # real failure that follows wins, since a failure is never undone
    files = {**FILES, "tests/test_a_hostile.py": HOSTILE}
    report = runner.run(files, task(), ["tests/test_a_hostile.py::test_lie", "tests/test_calc.py::test_add"],
                        account=account)
    assert "tests/test_calc.py::test_add" in report.failed


def test_scoring_files_restores_the_task_tests(tmp_path):
    write_files(FILES, tmp_path / "repo")
    t = task(repo=str(tmp_path / "repo"))
    cheat = {**FILES, "tests/test_calc.py": b"def test_add():\n    pass\n\ndef test_mul():\n    pass\n",
             "conftest.py": b"# hooks that would rewrite reports\n", "pytest.ini": b"[pytest]\naddopts = -p x\n"}
    scored = scoring_files(t, cheat)
    assert scored["tests/test_calc.py"] == TESTS
    assert scored["pytest.ini"] == FILES["pytest.ini"]
    assert "conftest.py" not in scored


# ------------------------------------------------------------------------------------------- files and diffs

def _git(cwd: Path, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=check, input=input)


def test_repo_files_skips_vcs_caches_and_binaries(tmp_path):
    write_files({"pkg/a.py": b"x = 1\n", "pkg/__pycache__/a.cpython-311.pyc": b"\0\0", "b.pyc": b"\0",
                 "data/blob.bin": b"\0" * (2 << 20), "data/small.bin": b"\0\1\2", "big.txt": b"a" * (2 << 20)},
                tmp_path)
    _git(tmp_path, "init", "-q")
    os.symlink("/etc/passwd", tmp_path / "link")
    files = repo_files(tmp_path)
    assert set(files) == {"pkg/a.py", "data/small.bin", "big.txt"}
    with pytest.raises(FileNotFoundError):
        repo_files(tmp_path / "missing")


def test_unified_diff_applies_with_git_apply(tmp_path):
    before = {"a.py": b"one\ntwo\nthree\n", "gone.py": b"bye\n", "keep.txt": b"same\n",
              "noeol.txt": b"first\nlast", "cr.txt": b"x\ry\nz\n", "empty_gone.txt": b"", "dir/deep.py": b"1\n"}
    after = {"a.py": b"one\nTWO\nthree\nfour\n", "keep.txt": b"same\n", "noeol.txt": b"first\nlast changed",
             "cr.txt": b"x\ry\nZ\n", "new/file.py": b"hello\nworld\n", "new_empty.txt": b"",
             "dir/deep.py": b"2"}
    repo = tmp_path / "repo"
    write_files(before, repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "before")
    patch = unified_diff(before, after)
    assert "diff --git a/gone.py b/gone.py\ndeleted file mode 100644" in patch
    assert "diff --git a/new/file.py b/new/file.py\nnew file mode 100644" in patch
    assert "keep.txt" not in patch
    _git(repo, "apply", "--check", "-", input=patch)
    _git(repo, "apply", "-", input=patch)
    assert repo_files(repo) == after
    # and back again
    _git(repo, "apply", "-R", "-", input=patch)
    assert repo_files(repo) == before
    assert unified_diff(before, before) == ""
