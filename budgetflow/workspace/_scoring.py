"""The working copy a scorer runs: the task's own tests and pytest configuration restored, so a patch cannot
rewrite, replace or hook the tests that judge it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..tasks import RepoTask
from ._files import repo_files

_TEST_CONFIG = frozenset({"conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml", ".pytest.ini"})


def nodeid_file(nodeid: str) -> str:
    """The file part of a pytest node id (``tests/test_x.py::TestA::test_b`` -> ``tests/test_x.py``)."""
    return nodeid.split("::", 1)[0]


def scoring_files(task: RepoTask, files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The working copy as the scorer should run it: the task's test files (those holding fail_to_pass /
    pass_to_pass tests), every ``conftest.py`` and the pytest configuration files restored from ``task.repo``, and
    ``conftest.py`` files the working copy added removed. So a patch cannot rewrite, replace or hook the tests that
    judge it from the test side (code under test still runs inside pytest's process: see verifiers' repo tests)."""
    original = repo_files(task.repo) if Path(task.repo).is_dir() else {}
    out = dict(files)
    for rel in [p for p in out if p.rsplit("/", 1)[-1] == "conftest.py" and p not in original]:
        del out[rel]
    wanted = {nodeid_file(nid) for nid in (*task.fail_to_pass, *task.pass_to_pass)}
    for rel, data in original.items():
        if rel in wanted or rel.rsplit("/", 1)[-1] in _TEST_CONFIG:
            out[rel] = data
    return out
