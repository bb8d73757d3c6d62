"""Committing a directory with git, reproducibly (task repos are one-commit git repositories)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..tasks import RepoTaskError

# Fixed identity and dates, no user or system config: the same files always give the same commit.
_GIT_ENV = {"GIT_AUTHOR_NAME": "budgetflow", "GIT_AUTHOR_EMAIL": "tasks@budgetflow.invalid",
            "GIT_COMMITTER_NAME": "budgetflow", "GIT_COMMITTER_EMAIL": "tasks@budgetflow.invalid",
            "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}


def git_commit_all(repo: str | os.PathLike[str], message: str) -> str:
    """``git init`` (if needed) and commit everything in ``repo`` with a fixed author and date, so the same files
    always give the same commit. Returns the commit hash."""
    env = {**os.environ, **_GIT_ENV}

    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false",
                               "-c", "core.autocrlf=false", *args], cwd=repo, env=env, capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise RepoTaskError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    if shutil.which("git") is None:
        raise RepoTaskError("git is not installed (apt-get install git)")
    if not (Path(repo) / ".git").exists():
        git("init", "-q")
    git("add", "-A", "--force")  # the commit holds exactly the directory, .gitignore or not
    git("commit", "-q", "--allow-empty", "--no-verify", "-m", message)
    return git("rev-parse", "HEAD")
