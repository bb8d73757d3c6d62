"""Applying a unified diff to a working copy (a solver's patch, or a task's reference fix)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping

from ..tasks import SOLUTION_FILE, RepoTask, RepoTaskError, solution_patch, task_dir
from ._files import repo_files, write_files


class PatchError(RepoTaskError):
    """A patch does not apply to a working copy; the message carries git's reason. (A RepoTaskError, so callers
    that catch task errors keep catching it.)"""


def apply_patch_files(files: Mapping[str, bytes], patch: str, *, workdir: str | os.PathLike[str] | None = None
                      ) -> dict[str, bytes]:
    """``files`` with a unified diff applied by ``git apply`` (in a scratch directory): e.g. a task's repo files
    plus its solution.patch. Raises PatchError with git's message if the patch does not apply."""
    with tempfile.TemporaryDirectory(prefix="bf-apply-", dir=workdir) as tmp:
        write_files(files, tmp)
        proc = subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], input=patch, text=True, cwd=tmp,
                              check=False, capture_output=True,
                              env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull})
        if proc.returncode != 0:
            raise PatchError(f"the patch does not apply: {proc.stderr.strip()[:500]}")
        return repo_files(tmp)


def solved_files(task: RepoTask) -> dict[str, bytes]:
    """The task's repository files with its reference fix (solution.patch) applied."""
    patch = solution_patch(task)
    if patch is None:
        raise RepoTaskError(f"task {task.instance_id} has no {SOLUTION_FILE} in {task_dir(task)}")
    return apply_patch_files(repo_files(task.repo), patch)
