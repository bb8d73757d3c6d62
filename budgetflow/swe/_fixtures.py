"""The ready-made SWE tasks: bugs injected into pinned projects' sdists, made once into the cache and reused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ..sandbox import Sandbox
from ..tasks import TASK_FILE, RepoTask, load_repo_task
from ._cache import cache_root, locked
from ._make_task import Progress, make_tasks
from ._sources import MakeTaskError

# Small, pure-Python projects whose sdists carry a pytest suite that runs on Debian's python3-pytest (7.2,
# /usr/bin/python3 3.11) with no other packages, in about a second. (project, version, tasks to make, seed)
SWE_PROJECTS: tuple[tuple[str, str, int, int], ...] = (
    ("inflection", "0.5.1", 4, 0),
    ("toolz", "0.12.1", 4, 0),
    ("more-itertools", "10.2.0", 4, 0),
)
_FIXTURES_FORMAT = 3


def sdist_path(name: str, version: str, *, download: bool = True) -> Path:
    """``<cache>/sdists/NAME-VERSION.tar.gz``, fetched with ``pip download --no-binary :all:`` when missing."""
    dest = cache_root() / "sdists"
    if (found := _find_sdist(dest, name, version)) is not None:
        return found
    if not download:
        raise MakeTaskError(f"{name}=={version} sdist is not in {dest}: run `pip download --no-deps --no-binary "
                            f":all: {name}=={version} -d {dest}`")
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                           "--disable-pip-version-check", "-q", f"{name}=={version}", "-d", str(dest)],
                          capture_output=True, text=True, check=False)
    if (found := _find_sdist(dest, name, version)) is not None:
        return found
    raise MakeTaskError(f"could not download the {name}=={version} sdist into {dest}: {proc.stderr.strip()[-500:]}")


def _find_sdist(dest: Path, name: str, version: str) -> Path | None:
    for stem in (f"{name}-{version}", f"{name.replace('-', '_')}-{version}"):
        for ext in (".tar.gz", ".zip"):
            if (dest / f"{stem}{ext}").is_file():
                return dest / f"{stem}{ext}"
    return None


def ensure_swe_fixtures(root: str | os.PathLike[str] | None = None, *,
                        projects: Sequence[tuple[str, str, int, int]] = SWE_PROJECTS, sandbox: Sandbox | None = None,
                        progress: Progress | None = None) -> list[RepoTask]:
    """The pinned projects' sdists in ``<cache>/sdists`` and the tasks made from them in ``root`` (default
    ``<cache>/swe-tasks``): made once, reused while the pins are unchanged. The builds spend on capped roots of the
    cache's fixture ledger (see ``make_tasks``)."""
    base = Path(root) if root else cache_root() / "swe-tasks"
    pins = [list(p) for p in projects]
    with locked(base.parent / f".{base.name}.lock"):
        index = base / "index.json"
        try:
            info = json.loads(index.read_text())
        except (OSError, ValueError):
            info = None
        if (isinstance(info, dict) and info.get("format") == _FIXTURES_FORMAT and info.get("pins") == pins
                and all((base / iid / TASK_FILE).is_file() for iid in info.get("tasks", []))):
            return [load_repo_task(base / iid) for iid in info["tasks"]]
        base.mkdir(parents=True, exist_ok=True)
        for old in base.iterdir():  # earlier fixtures only: task directories and unfinished builds
            if old.is_dir() and ((old / TASK_FILE).is_file() or old.name.startswith(".build-")):
                shutil.rmtree(old)
        ids: list[str] = []
        summary = {}
        for name, version, count, seed in projects:
            res = make_tasks(sdist_path(name, version), base, count=count, seed=seed, sandbox=sandbox,
                             progress=progress)
            ids += [t.instance_id for t in res.tasks]
            summary[name] = {"version": version, "tasks": len(res.tasks), "tried": len(res.attempts),
                             "rejected": res.rejected(), "seconds": round(res.seconds, 1)}
        index.write_text(json.dumps({"format": _FIXTURES_FORMAT, "pins": pins, "tasks": ids, "projects": summary},
                                    indent=2) + "\n")
        return [load_repo_task(base / iid) for iid in ids]
