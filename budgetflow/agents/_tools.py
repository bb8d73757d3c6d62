"""The tools of a SWE trajectory, over its in-memory working copy: read_file, search, edit/write, and run (the
tests through RepoTestRunner, or a command) — runs happen only in the sandbox, on a copy of the working files, each
under a reservation on the trajectory's account."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from ..budget import Account
from ..sandbox import ExecResult
from ..tasks import RepoTask
from ..verifiers import metered_run
from ..verifiers import RepoTestReport, RepoTestRunner
from ..workspace import scoring_files
from ._actions import Action
from ._workcopy import ToolError, WorkingCopy

MAX_OBSERVATION = 1800


def run_command(runner: RepoTestRunner, argv: Sequence[str], files: Mapping[str, bytes], *,
                account: Account, task: RepoTask | None = None) -> ExecResult:
    """Run a command in the sandbox on a copy of `files` (in the task's environment, when it names one), metered like
    a test run: the worst case (the runner's CPU limit) is reserved first, the measured CPU time committed."""
    argv = list(argv)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = "{python}"  # whatever interpreter this sandbox backend runs Python with
    box = runner.sandbox_for(task) if task is not None else runner.sandbox
    result, _ = metered_run(account, box, runner.limits, runner.usd_per_cpu_second,
                            lambda: box.run(argv, files=dict(files), limits=runner.limits))
    return result


def test_files_for(copy_files: Mapping[str, bytes], task: RepoTask, tests: Sequence[str],
                   test_files: Mapping[str, str], given: bool) -> dict[str, bytes]:
    """What a test run sees: the working copy, with the task's own test files restored when its tests are given
    (a patch cannot rewrite the tests that judge it) and the generated test files laid on top."""
    files = scoring_files(task, copy_files) if given and tests else dict(copy_files)
    files.update({p: s.encode() for p, s in test_files.items()})
    return files


def describe_report(report: RepoTestReport, limit: int = MAX_OBSERVATION) -> str:
    lines = [f"tests: {report.summary()}" + (" (timed out)" if report.timed_out else "")]
    for nid in sorted(report.failed)[:3]:
        lines.append(f"FAILED {nid}:\n{report.details.get(nid, '')[-500:]}")
    if report.errors:
        lines.append(report.errors[-500:])
    if not report.passed and not report.failed and report.output_tail:
        lines.append(report.output_tail[-600:])
    return _trim("\n".join(lines), limit)


def report_ok(report: RepoTestReport) -> bool:
    return bool(report.passed) and not report.failed and not report.timed_out


class ToolBox:
    """Executes actions on one working copy; every sandbox run is charged to `account`."""

    def __init__(self, copy: WorkingCopy, runner: RepoTestRunner, task: RepoTask, *, tests: Sequence[str],
                 test_files: Mapping[str, str], given: bool, account: Account):
        self.copy = copy
        self.runner = runner
        self.task = task
        self.tests = list(tests)
        self.test_files = dict(test_files)
        self.given = given
        self.account = account
        self.log: list[dict] = []  # one entry per executed action
        self.last_report: RepoTestReport | None = None

    def run_tests(self) -> RepoTestReport:
        files = test_files_for(self.copy.files, self.task, self.tests, self.test_files, self.given)
        report = self.runner.run(files, self.task, self.tests or None, account=self.account)
        self.last_report = report
        return report

    def execute(self, action: Action) -> tuple[str, bool]:
        """(observation for the model, whether the trajectory said it is done). Tool errors become observations;
        BudgetExceeded propagates (the trajectory ends)."""
        try:
            out, done = self._execute(action)
            self.log.append({"tool": action.tool, "ok": True, "target": action.path or action.text[:60]})
            return _trim(out, MAX_OBSERVATION), done
        except ToolError as err:
            self.log.append({"tool": action.tool, "ok": False, "target": action.path or action.text[:60],
                             "error": str(err)[:200]})
            return f"error: {err}", False

    def _execute(self, a: Action) -> tuple[str, bool]:
        if a.tool == "read":
            return self.copy.read(a.path, a.args.get("start", 1), a.args.get("end")), False
        if a.tool == "search":
            return self.copy.search(a.text), False
        if a.tool == "edit":
            return self.copy.edit(a.path, a.old, a.new), False
        if a.tool == "write":
            return self.copy.write(a.path, a.text), False
        if a.tool == "rewrite":
            return self.copy.replace_definitions(a.text), False
        if a.tool == "done":
            return "done", True
        if a.tool == "run":
            if not a.text or a.text.split()[0] in ("tests", "test", "pytest"):
                return describe_report(self.run_tests()), False
            try:
                argv = shlex.split(a.text)
            except ValueError as err:
                raise ToolError(f"cannot split the command: {err}") from None
            files = test_files_for(self.copy.files, self.task, self.tests, self.test_files, self.given)
            result = run_command(self.runner, argv, files, account=self.account, task=self.task)
            out = f"exit {result.exit_code}" + (f" ({result.killed_by})" if result.killed_by else "")
            return f"{out}\n{result.stdout[-900:]}\n{result.stderr[-600:]}".strip(), False
        raise ToolError(f"unknown tool {a.tool!r}")


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit // 2] + "\n...\n" + text[-limit // 2:]
