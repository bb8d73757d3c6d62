"""Repository tasks (SWE-style) on disk: reading and writing task directories.

A task directory holds ``task.json`` (a ``RepoTask``; ``repo`` is stored relative to the directory), ``repo/`` (the
code at the buggy state, a git repository with one commit) and, for generated and benchmark tasks, ``solution.patch``
(a reference fix, for scoring and for checking the task is solvable — never part of what a solver is shown).

Building such directories (QuixBugs, bugs injected into real projects) lives in ``budgetflow.swe``; working copies,
diffs and applying patches in ``budgetflow.workspace``.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from ._schemas import RepoTask

TASK_FILE = "task.json"
REPO_DIR = "repo"
SOLUTION_FILE = "solution.patch"
DEFAULT_TEST_COMMAND = ("python3", "-m", "pytest", "-q", "-p", "no:cacheprovider")


class RepoTaskError(RuntimeError):
    """A task directory is missing or malformed; the message says which file and what is wrong."""


def load_repo_task(directory: str | os.PathLike[str]) -> RepoTask:
    """Read a task directory (``task.json`` + ``repo/``). A relative ``repo`` in task.json is resolved against the
    directory, so task directories can be moved or copied."""
    d = Path(directory)
    path = d / TASK_FILE
    if not path.is_file():
        raise RepoTaskError(f"{d} is not a task directory: it has no {TASK_FILE}")
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise RepoTaskError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise RepoTaskError(f"{path} must hold a JSON object")
    repo = Path(str(data.get("repo") or REPO_DIR))
    if not repo.is_absolute():
        repo = d / repo
    data["repo"] = str(repo.resolve())
    try:
        task = RepoTask.model_validate(data)
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        raise RepoTaskError(f"{path} is not a valid RepoTask: {e}") from None
    if not Path(task.repo).is_dir():
        raise RepoTaskError(f"{path}: its repository {task.repo} does not exist")
    return task


def save_repo_task(task: RepoTask, directory: str | os.PathLike[str], *, solution_patch: str | None = None) -> Path:
    """Write ``task.json`` into ``directory`` (created). If the task's repo is ``directory/repo``, task.json refers to
    it relatively. ``solution_patch`` (a unified diff that fixes the repo) goes to ``solution.patch``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    data = task.model_dump(mode="json")
    repo = Path(task.repo).resolve()
    with contextlib.suppress(ValueError):
        data["repo"] = repo.relative_to(d.resolve()).as_posix()
    (d / TASK_FILE).write_text(json.dumps(data, indent=2) + "\n")
    if solution_patch is not None:
        (d / SOLUTION_FILE).write_text(solution_patch)
    return d


def load_repo_tasks(root: str | os.PathLike[str]) -> list[RepoTask]:
    """Every task directory directly under ``root`` (sorted by name)."""
    base = Path(root)
    if not base.is_dir():
        raise RepoTaskError(f"{base} is not a directory")
    return [load_repo_task(p) for p in sorted(base.iterdir()) if (p / TASK_FILE).is_file()]


def task_dir(task: RepoTask) -> Path:
    """The task directory of a task loaded from disk (the parent of its repo)."""
    return Path(task.repo).parent


def solution_patch(task: RepoTask) -> str | None:
    """The task's reference fix (``solution.patch`` beside its repo), or None when there is none."""
    path = task_dir(task) / SOLUTION_FILE
    return path.read_text() if path.is_file() else None
