"""Where a run's tasks come from: a built-in benchmark, a JSONL file of code/math tasks, a JSONL file of SWE-bench
instances (lines with ``instance_id`` and ``problem_statement``: repo tasks, see ``budgetflow.tasks.load_swebench``), or
a directory of repository tasks. Everything is loaded and validated before the run opens its ledger, so a bad source
costs nothing."""

from __future__ import annotations

from pathlib import Path

from ..tasks import Task

BUILTIN = ("humaneval", "gsm8k100", "quixbugs")


class SourceError(ValueError):
    """The source cannot be loaded; the message says why and what to do."""


def resolve_source(source: str) -> str:
    """A built-in name as is; a path made absolute (workers may run elsewhere)."""
    if source in BUILTIN:
        return source
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceError(f"source {source!r} is neither a built-in benchmark ({', '.join(BUILTIN)}) nor an existing "
                          f"file or directory")
    return str(path.resolve())


def load_source(source: str, limit: int | None = None) -> list[Task]:
    """The run's tasks, validated. Raises SourceError (or TaskFileError, a SourceError-like ValueError naming the
    line and field of a bad JSONL line)."""
    from ..tasks import DatasetMissing

    try:
        tasks = _load(source, limit)
    except DatasetMissing as err:
        raise SourceError(str(err)) from None
    if not tasks:
        raise SourceError(f"source {source!r} holds no tasks")
    ids = [t.task_id for t in tasks]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise SourceError(f"source {source!r} has duplicate task ids: {', '.join(dupes[:5])}")
    return tasks


def _load(source: str, limit: int | None) -> list[Task]:
    if source == "humaneval":
        from ..tasks import load_humaneval

        return list(load_humaneval(limit))
    if source == "gsm8k100":
        from ..tasks import load_gsm8k

        return list(load_gsm8k(limit))
    if source == "quixbugs":
        try:
            from ..swe import load_quixbugs
        except ImportError as err:
            raise SourceError(f"the quixbugs source needs budgetflow.swe.load_quixbugs, which is not available "
                              f"in this installation ({err})") from None
        return list(load_quixbugs(limit))
    path = Path(source)
    if path.is_dir():
        return _repo_tasks(path, limit)
    if path.is_file():
        from ..tasks import SWEBenchError, load_jsonl_tasks, load_swebench, looks_like_swebench

        if looks_like_swebench(path):
            try:
                return list(load_swebench(path, limit))
            except SWEBenchError as err:
                raise SourceError(str(err)) from None
        return list(load_jsonl_tasks(path, limit))
    raise SourceError(f"source {source!r} does not exist")


def _repo_tasks(path: Path, limit: int | None) -> list[Task]:
    try:
        from ..tasks import RepoTaskError, load_repo_task, load_repo_tasks
    except ImportError as err:
        raise SourceError(f"a directory source holds repository tasks, which need budgetflow.tasks ({err})") from None
    try:
        tasks = [load_repo_task(path)] if (path / "task.json").is_file() else load_repo_tasks(path)
    except RepoTaskError as err:
        raise SourceError(str(err)) from None
    if not tasks:
        raise SourceError(f"{path} holds no repository tasks (no */task.json); a JSONL file of code or math tasks "
                          f"is a file, not a directory")
    return tasks[:limit] if limit is not None else tasks
