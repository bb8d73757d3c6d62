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

# Small, pure-Python projects whose sdists carry a pytest suite that runs in about a second. The first three need
# nothing but pytest (they run on /usr/bin/python3 with Debian's python3-pytest); the last three have runtime
# dependencies that Debian's python3 lacks, so their tests run in an environment built from their metadata.
# (project, version, tasks to make, seed)
SWE_PROJECTS: tuple[tuple[str, str, int, int], ...] = (
    ("inflection", "0.5.1", 4, 0),
    ("toolz", "0.12.1", 4, 0),
    ("more-itertools", "10.2.0", 4, 0),
    ("freezegun", "1.4.0", 2, 0),  # python-dateutil (-> six)
    ("glom", "23.5.0", 2, 0),  # attrs, boltons, face
    ("parse-type", "0.6.2", 2, 0),  # parse, six; its pytest.ini needs the tests_require extra (pytest-html)
)
# Exact pins of the dependency projects' environments (and of pytest), kept in their tasks: the same environment
# (content hash) every time the fixtures are built.
_PYTEST = ("pytest==8.3.4", "pytest-timeout==2.4.0")
SWE_PINS: dict[str, tuple[str, ...]] = {
    "freezegun": ("python-dateutil==2.9.0.post0", "six==1.17.0", *_PYTEST),
    "glom": ("attrs==23.2.0", "boltons==23.1.1", "face==20.1.1", *_PYTEST),
    "parse-type": ("parse==1.20.2", "six==1.17.0", "pytest-html==4.1.1", *_PYTEST),
}
_FIXTURES_FORMAT = 4


def fixtures_root() -> Path:
    """Where the cached tasks live: one directory per fixture format, so checkouts of another format sharing the
    cache never remake (and delete) each other's tasks."""
    return cache_root() / f"swe-tasks-{_FIXTURES_FORMAT}"


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
    ``fixtures_root()``, ``<cache>/swe-tasks-<format>``): made once per project, reused while its pins are unchanged
    (a changed or new project is
    made alone). The builds spend on capped roots of the cache's fixture ledger (see ``make_tasks``)."""
    base = Path(root) if root else fixtures_root()
    with locked(base.parent / f".{base.name}.lock"):
        index = base / "index.json"
        try:
            info = json.loads(index.read_text())
        except (OSError, ValueError):
            info = {}
        known = info.get("projects", {}) if isinstance(info, dict) and info.get("format") == _FIXTURES_FORMAT else {}
        base.mkdir(parents=True, exist_ok=True)
        summary: dict[str, dict] = {}
        for name, version, count, seed in projects:
            pins = [version, count, seed, list(SWE_PINS.get(name, ()))]
            entry = known.get(name)
            if (isinstance(entry, dict) and entry.get("pins") == pins
                    and all((base / iid / TASK_FILE).is_file() for iid in entry.get("tasks", []))):
                summary[name] = entry
                continue
            _clear(base, name)
            res = make_tasks(sdist_path(name, version), base, count=count, seed=seed, sandbox=sandbox,
                             progress=progress, project=name, constraints=SWE_PINS.get(name, ()))
            env = res.environment
            summary[name] = {"pins": pins, "tasks": [t.instance_id for t in res.tasks], "tried": len(res.attempts),
                             "rejected": res.rejected(), "seconds": round(res.seconds, 1),
                             "environment": env.key if env else None,
                             "environment_build_s": env.build_seconds if env and env.built_now else 0.0}
            index.write_text(json.dumps({"format": _FIXTURES_FORMAT, "projects": {**known, **summary}}, indent=2)
                             + "\n")
        index.write_text(json.dumps({"format": _FIXTURES_FORMAT, "projects": summary}, indent=2) + "\n")
        return [load_repo_task(base / iid) for entry in summary.values() for iid in entry["tasks"]]


def _clear(base: Path, project: str) -> None:
    """Remove a project's earlier task directories (and unfinished builds) before making them again."""
    for old in base.iterdir():
        if old.is_dir() and (old.name.startswith(f"{project}__") or old.name.startswith(f".build-{project}__")):
            shutil.rmtree(old)
