"""The QuixBugs Python benchmark as repository tasks: one small git repo per program, built once into the cache.

Building runs every test file in the sandbox against the buggy and the fixed program, keeps the tests that fail
before and pass after (fail_to_pass) and those that pass both times (pass_to_pass), removes from the test file the
tests the fixed program cannot pass either (or passes in more than a quarter of the per-test limit: flaky), and drops
programs left with nothing to fix. The result is cached under ``<cache>/quixbugs`` (``$BUDGETFLOW_CACHE``, default
``~/.cache/budgetflow``).

Each task repo holds one program and its one test file, so running a task's tests is one pytest process over one
file: QuixBugs' programs never share a process (their suite cannot run as one session).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..budget import Account
from ..sandbox import Sandbox, get_sandbox
from ..tasks import DEFAULT_TEST_COMMAND, REPO_DIR, TASK_FILE, RepoTask, RepoTaskError, load_repo_task, save_repo_task
from ..verifiers import RepoTestReport, RepoTestRunner
from ..workspace import git_commit_all, unified_diff, write_files
from ._cache import build_account, cache_root, locked
from ._issue_text import write_issue
from ._quixbugs_sources import (
    QUIXBUGS_FIXES,
    QUIXBUGS_PIN,
    QUIXBUGS_TEST_TIMEOUT_S,
    apply_fix,
    quixbugs_repo_files,
    quixbugs_sources,
    remove_test_functions,
)

_FORMAT = 2  # bump when the way tasks are built changes: cached tasks of another format are rebuilt

ProgramProgress = Callable[[int, int, str], None]  # (done, total, program name)


def load_quixbugs(limit: int | None = None, root: str | os.PathLike[str] | None = None, *,
                  wheel: str | os.PathLike[str] | None = None, programs: Sequence[str] | None = None,
                  sandbox: Sandbox | None = None, account: Account | None = None, rebuild: bool = False,
                  progress: ProgramProgress | None = None) -> list[RepoTask]:
    """QuixBugs Python programs as RepoTasks (sorted by name; the first ``limit`` if given).

    Built once into ``root`` (default ``<cache>/quixbugs``) and reused: each task is a directory with task.json,
    repo/ (a one-commit git repo: the buggy program, tests/test_NAME.py, pytest.ini) and solution.patch. Building
    runs the tests in the sandbox (``sandbox``, default the process backend) charged to ``account`` (default: a
    root capped at FIXTURE_BUILD_CPU_SECONDS on the cache's fixture-builds.db ledger); ``progress(done, total,
    name)`` is called as programs are checked. ``programs`` builds only those programs (e.g. ``["gcd"]``; use a
    ``root`` of its own for such a subset)."""
    base = Path(root) if root else cache_root() / "quixbugs"
    index = base / "index.json"
    with locked(base.parent / f".{base.name}.lock"):
        info = _read_index(index)
        wanted = sorted(programs) if programs is not None else None
        if rebuild or info is None or info.get("programs") != wanted:
            _build(base, wheel=wheel, programs=wanted, sandbox=sandbox, account=account, progress=progress)
            info = _read_index(index)
            if info is None:
                raise RepoTaskError(f"building QuixBugs tasks in {base} failed: no index written")
    tasks = [load_repo_task(base / iid) for iid in info["tasks"]]
    return tasks[:limit] if limit is not None else tasks


def quixbugs_report(root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What the last build kept and dropped (and why): the cached index.json."""
    base = Path(root) if root else cache_root() / "quixbugs"
    info = _read_index(base / "index.json")
    if info is None:
        raise RepoTaskError(f"no QuixBugs tasks built in {base} yet: call load_quixbugs()")
    return info


def _read_index(path: Path) -> dict[str, Any] | None:
    """The build's index, or None when it is missing, of another format, or names a task that is gone."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("format") != _FORMAT:
        return None
    if not all((path.parent / iid / TASK_FILE).is_file() for iid in info.get("tasks", [])):
        return None
    return info


@dataclass
class _Checked:
    """One program run against its tests, buggy and fixed (reports None when it could not be checked)."""

    name: str
    files: dict[str, bytes]
    fixed: bytes | None = None
    buggy: RepoTestReport | None = None
    good: RepoTestReport | None = None
    problem: str = ""
    f2p: list[str] = field(default_factory=list)  # set by _keep
    p2p: list[str] = field(default_factory=list)


def _build(base: Path, *, wheel: str | os.PathLike[str] | None, programs: list[str] | None,
           sandbox: Sandbox | None, account: Account | None, progress: ProgramProgress | None) -> None:
    sources = quixbugs_sources(wheel)
    runner = RepoTestRunner(sandbox or get_sandbox("process"), per_test_timeout_s=None)
    names = sorted(sources) if programs is None else sorted(set(programs))
    unknown = [n for n in names if n not in sources]
    if unknown:
        raise RepoTaskError(f"no QuixBugs program named {', '.join(unknown)}; known: {', '.join(sorted(sources))}")
    base.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():  # tasks of an earlier build that this one may not keep
        if old.is_dir() and old.name.startswith("quixbugs__"):
            shutil.rmtree(old)
    kept: list[str] = []
    dropped: dict[str, str] = {}
    removed: dict[str, list[str]] = {}

    with build_account(account, "quixbugs") as acct:
        def check(name: str) -> _Checked:
            return _check(runner, acct, name, *sources[name])

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(check, names))
        for done, checked in enumerate(results, 1):
            if progress:
                progress(done, len(names), checked.name)
            why = _keep(checked, removed)
            if why:
                dropped[checked.name] = why
            else:
                kept.append(_write_task(base, checked))
    info = {"format": _FORMAT, "source": QUIXBUGS_PIN, "programs": programs,
            "test_timeout_s": QUIXBUGS_TEST_TIMEOUT_S, "tasks": kept, "dropped": dropped, "removed_tests": removed}
    tmp_index = base / ".index.json.tmp"
    tmp_index.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp_index, base / "index.json")


def _check(runner: RepoTestRunner, account: Account, name: str, program: bytes, test: bytes) -> _Checked:
    """Run the program's tests on the buggy and on the fixed program."""
    files = quixbugs_repo_files(name, program, test)
    if name not in QUIXBUGS_FIXES:
        return _Checked(name, files, problem="no reference fix known")
    try:
        fixed = apply_fix(program, QUIXBUGS_FIXES[name])
    except ValueError as e:
        return _Checked(name, files, problem=str(e))
    task = RepoTask(instance_id=f"quixbugs__{name}", project="quixbugs", repo="", issue="",
                    fail_to_pass=(), test_command=DEFAULT_TEST_COMMAND)
    buggy = runner.run(files, task, None, account=account)
    good = runner.run({**files, f"{name}.py": fixed}, task, None, account=account)
    return _Checked(name, files, fixed, buggy, good)


def _keep(c: _Checked, removed: dict[str, list[str]]) -> str:
    """Decide the program's tests (fail_to_pass, pass_to_pass, those cut from its test file, noted in ``removed``)
    and set them on ``c``; returns why the program is dropped, or "" when it makes a task."""
    if c.buggy is None or c.good is None:
        return c.problem
    good, buggy = c.good, c.buggy
    limit = QUIXBUGS_TEST_TIMEOUT_S / 4  # closer than that to the time limit: flaky, leave it out
    slow = {t for t, s in good.durations.items() if s > limit}
    unusable = good.failed | good.skipped | slow  # left out of the task and of its test file
    c.f2p = sorted((buggy.failed - good.failed - slow) & good.passed)
    c.p2p = sorted((buggy.passed & good.passed) - slow)
    if not good.passed:
        return f"the fixed program passes no test ({good.errors.strip()[:200]})"
    if not c.f2p:
        return "no test fails on the buggy program that passes on the fixed one"
    test_path = f"tests/test_{c.name}.py"
    if unusable:
        funcs = [t.split("::")[-1] for t in unusable if t.startswith(test_path + "::")]
        c.files[test_path] = remove_test_functions(c.files[test_path].decode(), funcs).encode()
        removed[c.name] = sorted(unusable)
    return ""


def _write_task(base: Path, c: _Checked) -> str:
    """Write the task directory (built aside, then moved into place); returns its instance id."""
    name, files = c.name, c.files
    assert c.buggy is not None and c.fixed is not None
    failures = [(t, c.buggy.details.get(t, "")) for t in c.f2p]
    issue = write_issue(f"`{name}()`", failures, test_command=DEFAULT_TEST_COMMAND,
                        is_test_file=lambda p: p.startswith("tests/"),
                        context=f"`{name}.py` implements `{name}()` as its docstring describes. The tests in "
                                f"`tests/test_{name}.py` are right; the program is not.")
    iid = f"quixbugs__{name}"
    final = base / iid
    tmp = base / f".build-{iid}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    repo = tmp / REPO_DIR
    write_files(files, repo)
    git_commit_all(repo, f"{name}: QuixBugs program and tests")
    patch = unified_diff({f"{name}.py": files[f"{name}.py"]}, {f"{name}.py": c.fixed})
    task = RepoTask(instance_id=iid, project="quixbugs", repo=str(repo), issue=issue,
                    test_command=DEFAULT_TEST_COMMAND, fail_to_pass=tuple(c.f2p), pass_to_pass=tuple(c.p2p),
                    hidden_tests=False)
    save_repo_task(task, tmp, solution_patch=patch)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return iid
