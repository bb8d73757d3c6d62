"""Repository test runner: run a project's pytest suite (or chosen node ids) against a working copy of a repository
inside the sandbox, under a reservation of CPU-seconds on the caller's account, and report which tests passed.

How one run works. The working copy (``files``: relative path -> bytes) becomes the sandbox's work dir. A small
supervisor program (``_repo_supervisor.py``, stdlib only, run with the sandbox's interpreter) reads its settings and
a random per-run marker from standard input, makes itself non-dumpable (so a test, running as the same uid, cannot
read its memory through ``/proc``), then runs the task's ``test_command`` as a child process with a tiny pytest
plugin (``_repo_plugin.py``) that appends one JSON line per test outcome to a file. When the child ends (or its
deadline passes) the supervisor prints the outcomes on one line behind the marker. The tests never see the marker: a
test that prints fake pytest or JUnit summary lines, or fake result lines, changes nothing.

Limits of that guarantee: the tests run inside pytest's own process, so code written against this harness (it can
append forged lines to the plugin's result file, or monkeypatch pytest's hooks, and then end the process before the
real outcomes are written) can still forge outcomes, as with every pytest-based harness (SWE-bench's included). A
forged "passed" never overrides a real failure recorded for the same test, though. Score a patch with the task's own
test files restored (``budgetflow.workspace.scoring_files``), so the patch cannot rewrite or replace the tests that
judge it.

Selection is done inside pytest (a collection hook keeps the requested node ids), not on the command line, so a node
id that no longer exists is reported as failed instead of aborting the whole run (pytest exits with a usage error
on an unknown node id). ``per_file=True`` runs one pytest process per test file (QuixBugs-style suites whose files
must not share a process; a crash then costs one file, not the run), at the price of one interpreter start per file.
"""

from __future__ import annotations

import functools
import json
import secrets
import sys
import threading
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

from ..budget import Account
from ..sandbox import EnvProgress, Limits, PythonEnv, Sandbox, build_python_env, get_sandbox, with_environment
from ..tasks import RepoTask, environment_requirements
from ..workspace import nodeid_file
from ._metered import metered_run, worst_case_cpu
from ._repo_report import RepoTestReport, missing_report, parse_report

MiB = 1 << 20

__all__ = ["RepoTestReport", "RepoTestRunner"]


@functools.cache
def _program(name: str) -> str:
    """The text of a program shipped beside this module (run inside the sandbox, never imported here)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


class RepoTestRunner:
    """Runs a repository's tests in a sandbox. Each run reserves its worst-case CPU time (and its price, if
    ``usd_per_cpu_second`` is set) on the account first, then commits the CPU time the sandbox measured.

    ``per_file``: one pytest process per test file (see the module doc). ``per_test_timeout_s``: pytest-timeout's
    default per test (tests' own ``@pytest.mark.timeout`` wins), when the plugin is installed in the sandbox.

    A task that names an environment (``task.environment``) runs in it, on whichever backend: the environment is
    built once from the local wheelhouse (``build_python_env``, cached by content hash; ``env_progress`` is told
    each stage of a first build, stderr by default) and the sandbox runs it (``with_environment``)."""

    def __init__(self, sandbox: Sandbox | None = None, *, usd_per_cpu_second: float = 0.0,
                 limits: Limits | None = None, per_file: bool = False, per_test_timeout_s: float | None = 10.0,
                 extra_args: Sequence[str] = ("--tb=short",), env_progress: EnvProgress | None = None):
        self.sandbox = sandbox or get_sandbox("auto")
        self.limits = limits or Limits(timeout_s=60.0, cpu_s=60.0, memory_bytes=512 * MiB, disk_bytes=256 * MiB,
                                       file_size_bytes=64 * MiB, output_bytes=8 * MiB, max_processes=64)
        self.usd_per_cpu_second = usd_per_cpu_second
        self.per_file = per_file
        self.per_test_timeout_s = per_test_timeout_s
        self.extra_args = tuple(extra_args)
        self.env_progress = env_progress or _stderr
        self._envs: dict[tuple[str, str], PythonEnv] = {}
        self._env_lock = threading.Lock()
        self._tools: PythonEnv | bool | None = None  # see _tools_env

    def environment(self, task: RepoTask) -> PythonEnv | None:
        """The task's environment, built (or found in the cache) the first time it is asked for; None when the task
        names none. Requirements come from the metadata files of the task's repository as it is on disk."""
        spec = task.environment
        if spec is None:
            return self._tools_env()
        key = (task.repo, spec.model_dump_json())
        with self._env_lock:
            if key in self._envs:
                return self._envs[key]
            root = Path(task.repo)
            files = {p: (root / p).read_bytes() for p in spec.metadata if (root / p).is_file()}
            env = build_python_env(environment_requirements(spec, files, task.project), constraints=spec.constraints,
                                   progress=self.env_progress)
            self._envs[key] = env
            return env

    def _tools_env(self) -> PythonEnv | None:
        """For a task that names no environment: None when this sandbox's own interpreter has pytest (Debian's, on
        the process backend), else an environment of just the runner's tools (the Docker base image has none), so
        such a task runs the same on every backend. Probed once per runner (an infrastructure check, unmetered)."""
        with self._env_lock:
            if self._tools is None:
                probe = self.sandbox.run(["{python}", "-c", "import pytest"], limits=Limits(timeout_s=60.0, cpu_s=30.0))
                self._tools = (False if probe.exit_code == 0
                               else build_python_env(TEST_TOOLS, progress=self.env_progress))
            return self._tools or None

    def sandbox_for(self, task: RepoTask) -> Sandbox:
        """Where the task's code runs: this runner's sandbox, running the task's environment if it names one."""
        env = self.environment(task)
        return self.sandbox if env is None else with_environment(self.sandbox, env)

    def worst_case(self) -> dict[str, float]:
        """What one run can cost at most (see metered.worst_case_cpu)."""
        return worst_case_cpu(self.sandbox, self.limits, self.usd_per_cpu_second)

    def run(self, files: Mapping[str, bytes], task: RepoTask, tests: Sequence[str] | None = None, *,
            account: Account) -> RepoTestReport:
        """Run ``task.test_command`` at the root of a copy of ``files`` (the agent's working copy), restricted to the
        node ids ``tests`` (None: the whole suite). Raises BudgetExceeded, before running anything, if the account
        cannot afford the worst case."""
        wanted = None if tests is None else list(dict.fromkeys(tests))
        work = {k: (v.encode() if isinstance(v, str) else bytes(v)) for k, v in files.items()}
        groups, missing = _groups(wanted, work, self.per_file)
        if wanted is not None and not groups:  # nothing runnable: answer without spending anything
            return missing_report(wanted, missing)
        mark = f"__bf_repo_tests_{secrets.token_hex(16)}__ "
        state_dir = f".bf-{secrets.token_hex(6)}"
        cfg = {
            "mark": mark, "state_dir": state_dir, "plugin": _program("_repo_plugin.py"), "tests": wanted,
            "groups": groups, "command": list(task.test_command), "extra_args": list(self.extra_args),
            "per_test_timeout": self.per_test_timeout_s, "cpu_s": self.limits.cpu_s,
            "deadline_s": max(1.0, self.limits.timeout_s - min(5.0, self.limits.timeout_s * 0.1)),
            "tail_bytes": 6000, "paths": list(task.environment.paths) if task.environment else [],
        }
        supervisor = _program("_repo_supervisor.py")
        python = "{python}"  # every sandbox backend runs this as its own interpreter (or its environment's)
        box = self.sandbox_for(task)
        result, cpu = metered_run(account, box, self.limits, self.usd_per_cpu_second, lambda: box.run(
            [python, "-I", "-c", supervisor], files=work, limits=self.limits, stdin=json.dumps(cfg)))
        return parse_report(result, mark, wanted, missing, cpu)


TEST_TOOLS = ("pytest", "pytest-timeout")  # what the runner needs in the sandbox


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _groups(wanted: list[str] | None, files: Mapping[str, bytes], per_file: bool) -> tuple[list[list[str]], list[str]]:
    """Argument lists, one per pytest process, and the requested ids whose file is not in the working copy."""
    if wanted is None:
        if not per_file:
            return [[]], []
        found = sorted(p for p in files if _looks_like_test_file(p))
        return ([[p] for p in found] or [[]]), []
    paths: dict[str, None] = {}
    missing = []
    for nid in wanted:
        path = nodeid_file(nid)
        if path in files or any(k.startswith(path.rstrip("/") + "/") for k in files):
            paths.setdefault(path, None)
        else:
            missing.append(nid)
    if per_file:
        return [[p] for p in paths], missing
    return ([list(paths)] if paths else []), missing


def _looks_like_test_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    hidden = any(part.startswith(".") for part in path.split("/"))
    return not hidden and name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))
