"""Writing a kept mutant as a task directory: the mutated repo, task.json, the reverse edit as solution.patch, and
mutation.json (bookkeeping only, never shown to a solver)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from ..tasks import REPO_DIR, RepoEnvironment, RepoTask, load_repo_task, save_repo_task
from ..verifiers import RepoTestReport
from ..workspace import git_commit_all, unified_diff, write_files
from ._issue_text import symptom, write_issue
from ._mutations import Mutation
from ._sources import is_test_path

_TEST_DIRS = ("tests/", "test/", "testing/")


def write_task(out_dir: Path, project: str, original: dict[str, bytes], mutated: dict[str, bytes], m: Mutation,
               base: RepoTestReport, report: RepoTestReport, failing: list[str], command: Sequence[str],
               seed: int, environment: RepoEnvironment | None = None) -> RepoTask:
    """Write ``out_dir/<project>__<digest>/`` (built aside, then moved into place) and load it back."""
    digest = hashlib.sha256(f"{project}:{m.path}:{m.key}".encode()).hexdigest()[:8]
    iid = f"{project}__{digest}"
    final = out_dir / iid
    tmp = out_dir / f".build-{iid}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    repo = tmp / REPO_DIR
    write_files(mutated, repo)
    git_commit_all(repo, f"{project}: source and tests")
    pass_to_pass = sorted(base.passed & report.passed)
    task = RepoTask(instance_id=iid, project=project, repo=str(repo), issue=_issue(project, report, failing, command),
                    test_command=tuple(command), fail_to_pass=tuple(failing), pass_to_pass=tuple(pass_to_pass),
                    hidden_tests=False, environment=environment)
    save_repo_task(task, tmp, solution_patch=unified_diff({m.path: mutated[m.path]}, {m.path: original[m.path]}))
    (tmp / "mutation.json").write_text(json.dumps({
        "path": m.path, "line": m.line, "function": m.function, "kind": m.kind, "description": m.description,
        "seed": seed, "fail_to_pass": len(failing), "pass_to_pass": len(pass_to_pass)}, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return load_repo_task(final)


def _issue(project: str, report: RepoTestReport, failing: list[str], command: Sequence[str]) -> str:
    """The issue, from the failing tests' output only."""
    def is_test_file(p: str) -> bool:
        return is_test_path(p) or p.startswith(_TEST_DIRS)

    failures = [(t, report.details.get(t, "")) for t in failing]
    how = symptom(failures[0][1], short=True)
    title = f"{project}: `{_short(failing[0])}` fails ({how})"
    return write_issue(project, failures, test_command=command, is_test_file=is_test_file,
                       context=_context(project, failing, report), title=title)


def _short(nodeid: str) -> str:
    parts = nodeid.split("::")
    return "::".join(parts[-2:]) if len(parts) > 2 else parts[-1]


def _context(project: str, failing: list[str], report: RepoTestReport) -> str:
    kinds = sorted({symptom(report.details.get(t, ""), short=True) for t in failing})
    where = sorted({t.split("::")[0] for t in failing})
    return (f"{project}'s own test suite catches a bug: {len(failing)} test{'s' if len(failing) != 1 else ''} in "
            f"{', '.join(f'`{w}`' for w in where)} fail{'s' if len(failing) == 1 else ''} "
            f"({'; '.join(kinds)}). The tests are right; the code they test is not.")
