"""SWE-style issue resolution, task side: inject bugs into real projects to make RepoTasks (``make_tasks``), and the
ready-made fixtures built from pinned sdists (``ensure_swe_fixtures``)."""

from .make_task import (
    SWE_PROJECTS,
    MakeResult,
    MakeTaskError,
    ensure_swe_fixtures,
    make_tasks,
    sdist_path,
    unpack_source,
)
from .mutations import Mutation, find_mutations

__all__ = [
    "SWE_PROJECTS",
    "MakeResult",
    "MakeTaskError",
    "Mutation",
    "ensure_swe_fixtures",
    "find_mutations",
    "make_tasks",
    "sdist_path",
    "unpack_source",
]
