"""Task schemas (code, math, repo) and loaders: HumanEval, GSM8K-100, QuixBugs repos and repo-task directories."""

from .loaders import DatasetMissing, docstring_examples, load_gsm8k, load_humaneval, normalize_number
from .repo import (
    RepoTaskError,
    load_quixbugs,
    load_repo_task,
    load_repo_tasks,
    save_repo_task,
    solution_patch,
    solved_files,
)
from .schemas import CodeTask, MathTask, RepoTask

__all__ = ["CodeTask", "DatasetMissing", "MathTask", "RepoTask", "RepoTaskError", "docstring_examples", "load_gsm8k",
           "load_humaneval", "load_quixbugs", "load_repo_task", "load_repo_tasks", "normalize_number", "save_repo_task",
           "solution_patch", "solved_files"]
