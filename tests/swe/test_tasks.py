"""Repository tasks: task directories, QuixBugs (real wheel, real sandbox runs) and tasks made by injecting bugs into a
real project (inflection 0.5.1's sdist) through the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from budgetflow import Budget, Ledger
from budgetflow.swe import (
    FIXTURE_BUILD_CPU_SECONDS,
    QUIXBUGS_WHEEL,
    find_mutations,
    load_quixbugs,
    quixbugs_report,
    quixbugs_wheel,
)
from budgetflow.tasks import RepoTask, RepoTaskError, load_repo_task, save_repo_task, solution_patch, task_dir
from budgetflow.workspace import repo_files, solved_files

from .conftest import parallel, run_cli


def _git(repo: str, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def _added_lines(patch: str) -> list[str]:
    return [line[1:].strip() for line in patch.splitlines()
            if line.startswith("+") and not line.startswith("+++") and line[1:].strip()]


def _removed_lines(patch: str) -> list[str]:
    return [line[1:].strip() for line in patch.splitlines()
            if line.startswith("-") and not line.startswith("---") and line[1:].strip()]


# ---------------------------------------------------------------------------------------------- task directories

def test_save_and_load_round_trip_and_move(tmp_path):
    d = tmp_path / "t1"
    (d / "repo").mkdir(parents=True)
    (d / "repo" / "x.py").write_text("x = 1\n")
    task = RepoTask(instance_id="p__1", project="p", repo=str(d / "repo"), issue="it breaks",
                    fail_to_pass=("test_x.py::test_a",), pass_to_pass=("test_x.py::test_b",))
    save_repo_task(task, d, solution_patch="diff --git a/x.py b/x.py\n")
    assert json.loads((d / "task.json").read_text())["repo"] == "repo"  # stored relative: the dir can move
    moved = tmp_path / "elsewhere"
    shutil.move(str(d), str(moved))
    loaded = load_repo_task(moved)
    assert loaded == task.model_copy(update={"repo": str((moved / "repo").resolve())})
    assert task_dir(loaded) == moved.resolve()
    assert solution_patch(loaded).startswith("diff --git")


def test_bad_task_directories_say_what_is_wrong(tmp_path):
    with pytest.raises(RepoTaskError, match="no task.json"):
        load_repo_task(tmp_path)
    (tmp_path / "task.json").write_text("{not json")
    with pytest.raises(RepoTaskError, match="not valid JSON"):
        load_repo_task(tmp_path)
    (tmp_path / "task.json").write_text(json.dumps({"instance_id": "a", "repo": "repo"}))
    with pytest.raises(RepoTaskError, match="not a valid RepoTask"):
        load_repo_task(tmp_path)
    (tmp_path / "task.json").write_text(json.dumps({"instance_id": "a", "project": "p", "repo": "repo",
                                                    "issue": "", "fail_to_pass": ["t.py::a"]}))
    with pytest.raises(RepoTaskError, match="does not exist"):
        load_repo_task(tmp_path)


# ------------------------------------------------------------------------------------------------------ QuixBugs

def test_quixbugs_tasks_are_git_repos_with_issues_that_do_not_give_the_fix(quixbugs):
    assert len(quixbugs) >= 20
    info = quixbugs_report()
    assert len(info["tasks"]) == len(quixbugs)
    for task in quixbugs:
        assert task.project == "quixbugs" and task.fail_to_pass
        name = task.instance_id.split("__", 1)[1]
        files = repo_files(task.repo)
        assert {f"{name}.py", f"tests/test_{name}.py", "pytest.ini"} <= set(files)
        assert b"bugs.quixbugs" not in files[f"tests/test_{name}.py"]  # imports fit the repo layout
        assert _git(task.repo, "status", "--porcelain") == ""
        assert len(_git(task.repo, "rev-list", "--all").split()) == 1
        assert name in task.issue and task.fail_to_pass[0] in task.issue
        patch = solution_patch(task)
        for fixed_line in _added_lines(patch):
            assert fixed_line not in task.issue


def test_each_quixbugs_task_fails_as_shipped_and_is_solved_by_the_correct_program(quixbugs, runner, session_ledger):
    acct = session_ledger.root("quixbugs-check", Budget(cpu_seconds=5000))

    def check(task):
        tests = [*task.fail_to_pass, *task.pass_to_pass]
        buggy = runner.run(repo_files(task.repo), task, tests, account=acct)
        fixed = runner.run(solved_files(task), task, tests, account=acct)
        return task, buggy, fixed

    for task, buggy, fixed in parallel(check, quixbugs):
        assert set(task.fail_to_pass) <= buggy.failed, (task.instance_id, buggy.summary(task))
        assert set(task.pass_to_pass) <= buggy.passed, (task.instance_id, buggy.summary(task))
        assert fixed.resolved(task), (task.instance_id, fixed.summary(task), fixed.details)
    assert acct.spent().cpu_seconds > 0


def test_quixbugs_builds_a_subset_from_the_wheel(tmp_path, sandbox):
    tasks = load_quixbugs(root=tmp_path / "qb", programs=["gcd", "to_base"], sandbox=sandbox)
    assert [t.instance_id for t in tasks] == ["quixbugs__gcd", "quixbugs__to_base"]
    to_base = tasks[1]
    # the wheel's test file compares with unquoted strings (`== 1F`); the repaired one quotes them
    assert "== '1F'" in (Path(to_base.repo) / "tests/test_to_base.py").read_text()
    assert len(to_base.fail_to_pass) == 7
    again = load_quixbugs(root=tmp_path / "qb", programs=["gcd", "to_base"], sandbox=sandbox)  # cached
    assert again == tasks
    assert load_quixbugs(limit=1, root=tmp_path / "qb", programs=["gcd", "to_base"]) == tasks[:1]


def test_fixture_builds_spend_on_a_capped_account(tmp_path, sandbox, session_ledger, monkeypatch):
    # the caller's account is charged for the sandbox runs of a build
    acct = session_ledger.root("qb-build", Budget(cpu_seconds=500))
    load_quixbugs(root=tmp_path / "given", programs=["gcd"], sandbox=sandbox, account=acct)
    assert acct.spent().cpu_seconds > 0
    # without one, the build opens a capped root of its own on the cache's ledger, which is kept
    wheel = quixbugs_wheel(download=False)
    monkeypatch.setenv("BUDGETFLOW_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "data").mkdir(parents=True)
    (tmp_path / "cache" / "data" / QUIXBUGS_WHEEL).symlink_to(wheel)
    load_quixbugs(root=tmp_path / "own", programs=["gcd"], sandbox=sandbox)
    with Ledger(tmp_path / "cache" / "fixture-builds.db", create=False) as ledger:
        (build,) = [a for a in ledger.accounts() if a.name.startswith("build/quixbugs/")]
        assert build.parent is None and build.budget.cpu_seconds == FIXTURE_BUILD_CPU_SECONDS
        assert 0 < build.committed.cpu_seconds <= FIXTURE_BUILD_CPU_SECONDS
        assert ledger.verify().ok


# -------------------------------------------------------------------------------------------------- make-task

def test_mutations_change_only_their_tokens():
    src = (b"def clamp(x, lo, hi):\n    # keep x in range\n    if x < lo and lo is not None:\n        return lo\n"
           b"    total = x + 1\n    while total > hi:\n        total -= 1\n    return total\n\n"
           b"X = 1 if 2 > 3 else 4  # module level: never mutated\n")
    muts = find_mutations("m.py", src)
    kinds = {m.kind for m in muts}
    assert {"comparison", "boolean", "arithmetic", "negate", "constant", "return"} <= kinds
    for m in muts:
        out = m.apply(src)
        changed = [i for i, (a, b) in enumerate(zip(src.splitlines(), out.splitlines())) if a != b]
        assert len(changed) == 1 and len(out.splitlines()) == len(src.splitlines()), m
        assert changed[0] < 8  # never the module-level line
        assert out.splitlines()[1] == b"    # keep x in range"
    assert b"if x <= lo and" in next(m for m in muts if m.description == "`<` -> `<=`").apply(src)
    assert b"if not (x < lo and lo is not None):" in next(
        m for m in muts if m.kind == "negate" and m.line == 3).apply(src)


def test_made_tasks_fail_as_made_and_the_reverse_mutation_resolves_them(made_tasks, runner, session_ledger):
    tasks, proc = made_tasks
    assert len(tasks) == 2
    assert "inflection" in proc.stdout and "fail_to_pass" in proc.stdout
    acct = session_ledger.root("made-check", Budget(cpu_seconds=5000))

    def check(task):
        buggy = runner.run(repo_files(task.repo), task, None, account=acct)
        fixed = runner.run(solved_files(task), task, None, account=acct)
        return task, buggy, fixed

    for task, buggy, fixed in parallel(check, tasks):
        assert task.project == "inflection" and task.instance_id.startswith("inflection__")
        assert 1 <= len(task.fail_to_pass) <= 5 and len(task.pass_to_pass) > 400
        assert set(task.fail_to_pass) <= buggy.failed
        assert set(task.pass_to_pass) <= buggy.passed
        assert fixed.resolved(task), fixed.summary(task)
        # the repo is the project at the buggy state, one commit, clean; the bug is a one-line edit
        assert _git(task.repo, "status", "--porcelain") == ""
        assert len(_git(task.repo, "rev-list", "--all").split()) == 1
        assert "test_inflection.py" in repo_files(task.repo)
        patch = solution_patch(task)
        assert len(_added_lines(patch)) == 1 and len(_removed_lines(patch)) == 1
        # the issue comes from the failing tests and does not show the mutated line or its fix
        assert task.fail_to_pass[0] in task.issue
        for line in _added_lines(patch) + _removed_lines(patch):
            assert line not in task.issue
        meta = json.loads((Path(task.repo).parent / "mutation.json").read_text())
        assert meta["description"] not in task.issue


def _tiny_project(root: Path, test_body: str) -> Path:
    (root / "tiny").mkdir(parents=True)
    (root / "tiny" / "__init__.py").write_text("def f(x):\n    if x > 0:\n        return x + 1\n    return 0\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_tiny.py").write_text(f"from tiny import f\n\n\ndef test_f():\n    {test_body}\n")
    return root


def test_cli_errors_for_bad_sources(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    proc = run_cli("swe", "make-task", str(text), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "not a source distribution" in proc.stderr

    proc = run_cli("swe", "make-task", str(tmp_path / "missing.tar.gz"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr

    fake = tmp_path / "fake-1.0.tar.gz"
    fake.write_bytes(b"this is not gzip")
    proc = run_cli("swe", "make-task", str(fake), "--out", str(tmp_path / "o"))
    assert proc.returncode == 1 and "not a readable source distribution" in proc.stderr

    notests = tmp_path / "notests"
    (notests / "pkg").mkdir(parents=True)
    (notests / "pkg" / "__init__.py").write_text("def f():\n    return 1\n")
    sdist = tmp_path / "notests-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(notests, arcname="notests-1.0")
    proc = run_cli("swe", "make-task", str(sdist), "--out", str(tmp_path / "o"))
    assert proc.returncode == 1 and "no tests found" in proc.stderr

    proc = run_cli("swe", "make-task", str(notests), "--out", str(tmp_path / "o"), "--count", "0")
    assert proc.returncode == 2


def test_cli_says_when_no_test_passes_or_no_mutation_is_caught(tmp_path):
    failing = _tiny_project(tmp_path / "failing", "assert f(1) == 99")
    proc = run_cli("swe", "make-task", str(failing), "--out", str(tmp_path / "o"))
    assert proc.returncode == 1 and "no test of" in proc.stderr and "passes on the original" in proc.stderr

    weak = _tiny_project(tmp_path / "weak", "assert f(1) is not None")  # catches no bug
    proc = run_cli("swe", "make-task", str(weak), "--out", str(tmp_path / "o"), "--max-tries", "3")
    assert proc.returncode == 1
    assert "no mutation of weak was caught by its tests within 3 tries" in " ".join(proc.stderr.split())
    assert not any(p.name.startswith("weak__") for p in (tmp_path / "o").glob("*"))


def test_make_task_help_teaches():
    proc = run_cli("swe", "make-task", "--help")
    assert proc.returncode == 0
    for words in ("pip download", "fail_to_pass", "--count", "--seed", "--test-cmd", "--max-tries"):
        assert words in proc.stdout


def test_cached_fixtures_cover_three_projects():
    from budgetflow.swe import ensure_swe_fixtures, fixtures_root

    if not (fixtures_root() / "index.json").is_file():
        # make test builds them before pytest: missing means the setup failed, which a skip would hide
        pytest.fail("fixtures not built: run scripts/setup_swe_tasks.sh (make test does, before the tests)")
    tasks = ensure_swe_fixtures()  # reuses the cache; rebuilds only if the pins changed
    assert len(tasks) >= 10 and len({t.project for t in tasks}) >= 3
    for task in tasks:
        assert task.fail_to_pass and task.pass_to_pass and solution_patch(task)
