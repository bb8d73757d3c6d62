"""Repository working copies: a repo's files as ``{relative path: bytes}``, writing them back, git-style diffs,
applying a patch, committing a directory, the files a scorer runs (the task's own tests restored), and localisation
(which functions an issue is about: ``localize``).

Sits below verifiers (which run tests on a working copy) and above tasks (whose schemas and task directories it
reads); it uses only the standard library and git, through subprocess."""

from ._diff import unified_diff
from ._files import MAX_FILE_BYTES, SKIP_DIRS, SKIP_SUFFIXES, repo_files, write_files
from ._git import git_commit_all
from ._localize import Location, functions, is_test_file, localize, render_locations
from ._patch import PatchError, apply_patch_files, solved_files
from ._scoring import nodeid_file, scoring_files

__all__ = [
    "Location", "functions", "is_test_file", "localize", "render_locations", "MAX_FILE_BYTES", "SKIP_DIRS",
    "SKIP_SUFFIXES", "PatchError", "apply_patch_files", "git_commit_all", "nodeid_file", "repo_files",
    "scoring_files", "solved_files", "unified_diff", "write_files"
]
