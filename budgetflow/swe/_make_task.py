"""Make SWE-style tasks from a real project: inject one small bug into its source, keep it when the project's own
test suite catches it, and write the task (issue written from the failing tests, never from the bug).

Steps for one source (an sdist ``.tar.gz`` or an unpacked project directory):

1. read the project's files (``repo_files``) and its environment (``environment="auto"``: the install requirements
   and test extras its metadata names; none when it needs nothing beyond pytest), split them into tests
   (``test_*.py``, ``*_test.py``, ``conftest.py``, anything under a ``tests``/``test``/``testing`` directory) and
   source modules (the rest, minus setup.py, docs, examples, benchmarks, vendored version files);
2. run the whole test suite once in the sandbox (``RepoTestRunner``, in the environment: built once from the local
   wheelhouse, cached): the tests that pass there are the candidates for fail_to_pass / pass_to_pass (the rest are
   ignored);
3. propose mutations (``budgetflow.swe._mutations``) in functions, those in functions the tests mention first, kinds
   interleaved, in an order fixed by ``seed``; try them one at a time (two at once on two cores): apply the edit
   (only the mutated tokens change), run the suite, keep the mutant when 1..``max_failing`` tests fail, none of them
   by timing out, and the failures repeat on a second run of just those tests;
4. write ``OUT/<instance_id>/``: ``repo/`` (the mutated project, a one-commit git repo), ``task.json`` (fail_to_pass:
   the tests that failed; pass_to_pass: the rest that passed on the original), ``solution.patch`` (the reverse edit)
   and ``mutation.json`` (what was changed: for bookkeeping only, never shown to a solver).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..budget import Account
from ..sandbox import Limits, PythonEnv, Sandbox, get_sandbox
from ..tasks import (
    DEFAULT_TEST_COMMAND,
    RepoEnvironment,
    RepoTask,
    detect_environment,
    environment_requirements,
    requirement_name,
)
from ..verifiers import RepoTestReport, RepoTestRunner
from ..workspace import repo_files
from ._cache import build_account
from ._mutations import Mutation
from ._ordering import order_mutations
from ._sources import MakeTaskError, is_test_path, source_modules, unpack_source
from ._task_writer import write_task

MiB = 1 << 20
# one suite run of a small project: generous, since a mutant may make it slower
_LIMITS = Limits(timeout_s=120.0, cpu_s=120.0, memory_bytes=1024 * MiB, disk_bytes=256 * MiB,
                 file_size_bytes=64 * MiB, output_bytes=16 * MiB, max_processes=64)


@dataclass
class Attempt:
    mutation: Mutation
    outcome: str  # kept | no failure | too many failures | timeout | flaky | error | surplus
    failing: int = 0


@dataclass
class MakeResult:
    """What a make_tasks call produced and tried."""

    tasks: list[RepoTask]
    project: str
    baseline_passed: int
    attempts: list[Attempt] = field(default_factory=list)
    seconds: float = 0.0
    environment: PythonEnv | None = None  # what the tests ran in (its build time and CPU when built now)

    def rejected(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.attempts:
            if a.outcome != "kept":
                out[a.outcome] = out.get(a.outcome, 0) + 1
        return out


Progress = Callable[[str, int, int, int], None]  # (stage, tried, max_tries, kept)


@dataclass
class _Project:
    """A project read for bug injection: its files, test files and source modules."""

    name: str
    files: dict[str, bytes]
    tests: list[str]
    modules: list[str]


def make_tasks(source: str | os.PathLike[str], out: str | os.PathLike[str], *, count: int = 3, seed: int = 0,
               test_command: Sequence[str] | None = None, max_tries: int | None = None, max_failing: int = 5,
               per_test_timeout_s: float = 5.0, sandbox: Sandbox | None = None, account: Account | None = None,
               project: str | None = None, progress: Progress | None = None, workers: int = 2,
               environment: RepoEnvironment | str | None = "auto", constraints: Sequence[str] = ()) -> MakeResult:
    """Make up to ``count`` tasks from ``source`` (an sdist or a project directory) into ``out``.

    ``environment``: ``"auto"`` (what the project's metadata names, see ``detect_environment``), a
    ``RepoEnvironment``, or None (the sandbox's own interpreter). ``constraints``: exact pins (``name==version``)
    its installs are held to; the tasks keep them, so their environment is the one the tasks were made in.

    ``max_tries`` (default ``8 * count + 8``) bounds the mutants run. Without an ``account`` the runs spend on a
    capped root of the cache's fixture ledger. Raises MakeTaskError when the source is not a project, has no tests,
    its tests do not pass, or no mutation is caught within the tries."""
    if count < 1:
        raise MakeTaskError("--count must be at least 1")
    started = time.monotonic()
    command = tuple(test_command) if test_command else DEFAULT_TEST_COMMAND
    result = MakeResult(tasks=[], project="", baseline_passed=0)
    tries = max_tries if max_tries is not None else 8 * count + 8
    proj = _read_project(source, project)
    result.project = proj.name
    env = _environment(environment, proj, constraints)

    def say_env(message: str) -> None:
        if progress:
            progress(message, 0, tries, 0)

    runner = RepoTestRunner(sandbox or get_sandbox("process"), per_test_timeout_s=per_test_timeout_s, limits=_LIMITS,
                            env_progress=say_env)
    meta = Path(tempfile.mkdtemp(prefix="bf-make-task-meta-"))  # the metadata the environment is read from
    try:
        for path in env.metadata if env else ():
            (meta / path).parent.mkdir(parents=True, exist_ok=True)
            (meta / path).write_bytes(proj.files[path])
        probe = RepoTask(instance_id=f"{proj.name}__probe", project=proj.name, repo=str(meta), issue="",
                         fail_to_pass=(), test_command=command, environment=env)
        result.environment = runner.environment(probe)
        _search(result, runner, probe, proj, account, command, tries, count, seed, max_failing, out, workers,
                progress, env)
    finally:
        shutil.rmtree(meta, ignore_errors=True)
    result.seconds = time.monotonic() - started
    if not result.tasks:
        rejected = ", ".join(f"{v} {k}" for k, v in result.rejected().items()) or "no candidates"
        raise MakeTaskError(f"no mutation of {proj.name} was caught by its tests within {len(result.attempts)} tries "
                            f"({rejected}); {result.baseline_passed} tests pass on the original. Try more tries "
                            "(--max-tries), another --seed, or a larger --max-failing.")
    return result


def _search(result: MakeResult, runner: RepoTestRunner, probe: RepoTask, proj: "_Project", account: Account | None,
            command: Sequence[str], tries: int, count: int, seed: int, max_failing: int,
            out: str | os.PathLike[str], workers: int, progress: Progress | None,
            env: RepoEnvironment | None) -> None:
    """Run the baseline, then mutants until ``count`` are kept (into ``result.tasks``)."""
    kept: list[RepoTask] = []
    tried = 0
    with build_account(account, f"make-task/{proj.name}") as acct:
        if progress:
            progress("running the original test suite", 0, tries, 0)
        base = _baseline(runner, probe, proj, acct, command)
        result.baseline_passed = len(base.passed)
        candidates = order_mutations(proj.modules, proj.files, proj.tests, seed)[:tries]
        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)

        def attempt(m: Mutation) -> tuple[dict[str, bytes], RepoTestReport, list[str], str]:
            return _attempt(runner, probe, acct, proj.files, base, m, max_failing)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            i = 0
            while i < len(candidates) and len(kept) < count:
                batch = candidates[i:i + max(1, workers)]
                i += len(batch)
                for m, (mutated, report, failing, outcome) in zip(batch, pool.map(attempt, batch), strict=True):
                    tried += 1
                    if outcome == "kept":
                        if len(kept) < count:
                            kept.append(write_task(out_dir, proj.name, proj.files, mutated, m, base, report,
                                                   failing, command, seed, env))
                        else:
                            outcome = "surplus"
                    result.attempts.append(Attempt(m, outcome, len(failing)))
                    if progress:
                        progress(f"{proj.name}: {m.path}:{m.line}", tried, len(candidates), len(kept))
    result.tasks = kept


def _read_project(source: str | os.PathLike[str], project: str | None) -> _Project:
    """The source's files (packaging metadata dropped), its test files and source modules."""
    with tempfile.TemporaryDirectory(prefix="bf-make-task-") as tmp:
        root, name = unpack_source(source, tmp)
        files = repo_files(root)
    for junk in [p for p in files if PurePosixPath(p).parts[0].endswith(".egg-info") or p == "PKG-INFO"]:
        files.pop(junk)
    tests = [p for p in files if is_test_path(p) and p.endswith(".py") and not p.endswith("conftest.py")]
    if not tests:
        raise MakeTaskError(f"no tests found in {source}: expected test_*.py / *_test.py files or a tests/ directory "
                            "(an sdist must include its test suite; many do, wheels never do)")
    modules = source_modules(files)
    if not modules:
        raise MakeTaskError(f"no Python source modules found in {source} besides its tests")
    return _Project(project or name, files, tests, modules)


def _environment(spec: RepoEnvironment | str | None, proj: _Project,
                 constraints: Sequence[str]) -> RepoEnvironment | None:
    """The environment the tasks name: detected from the metadata ("auto"; None when the project needs nothing but
    pytest), given, or none."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec != "auto":
            raise MakeTaskError(f"environment must be 'auto', a RepoEnvironment or None, not {spec!r}")
        spec = detect_environment(proj.files, project=proj.name)
        needs = [r for r in environment_requirements(spec, proj.files, proj.name)
                 if requirement_name(r) not in ("pytest", "pytest-timeout")]
        if not needs and not constraints:
            return None
    return spec.model_copy(update={"constraints": tuple(dict.fromkeys((*spec.constraints, *constraints)))})


def _baseline(runner: RepoTestRunner, probe: RepoTask, proj: _Project, account: Account,
              command: Sequence[str]) -> RepoTestReport:
    """The suite on the original source: what passes there is what a mutant can break."""
    base = runner.run(proj.files, probe, None, account=account)
    if not base.passed:
        why = base.errors.strip() or base.output_tail.strip()[-1500:]
        raise MakeTaskError(f"no test of {proj.name} passes on the original source, so no bug can be detected "
                            f"(exit code {base.exit_code}):\n{why[-1500:]}\nCheck that the suite runs with "
                            f"`{' '.join(command)}` with the project's requirements"
                            f"{' (' + ', '.join(probe.environment.metadata) + ')' if probe.environment else ''}, "
                            "or pass --test-cmd.")
    return base


def _attempt(runner: RepoTestRunner, probe: RepoTask, account: Account, files: dict[str, bytes],
             base: RepoTestReport, m: Mutation, max_failing: int
             ) -> tuple[dict[str, bytes], RepoTestReport, list[str], str]:
    """Run the suite on one mutant: (mutated files, its report, the baseline tests it breaks, outcome)."""
    mutated = dict(files)
    mutated[m.path] = m.apply(files[m.path])
    report = runner.run(mutated, probe, None, account=account)
    failing = sorted(base.passed & report.failed)
    if not failing:
        return mutated, report, failing, "no failure"
    if len(failing) > max_failing:
        return mutated, report, failing, "too many failures"
    if any("Timeout >" in report.details.get(t, "") for t in failing) or report.timed_out:
        return mutated, report, failing, "timeout"
    again = runner.run(mutated, probe, failing, account=account)  # a real bug fails the same tests twice
    if set(failing) - again.failed:
        return mutated, report, failing, "flaky"
    return mutated, report, failing, "kept"
