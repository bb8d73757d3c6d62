"""A project's source to inject bugs into: an sdist (unpacked safely) or a directory, its name, and which of its
files are tests and which are source modules."""

from __future__ import annotations

import os
import re
import tarfile
import zipfile
from pathlib import Path, PurePosixPath


class MakeTaskError(RuntimeError):
    """Tasks could not be made from a source; the message says why and what to try."""


ARCHIVES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")

_TEST_DIRS = {"tests", "test", "testing"}
_SKIP_DIRS = {"docs", "doc", "examples", "example", "benchmarks", "benchmark", "bench", "build", "dist", "scripts",
              "tools", "ci", ".github"}
_SKIP_FILES = {"setup.py", "conftest.py", "versioneer.py", "_version.py", "version.py", "__main__.py", "noxfile.py",
               "fabfile.py", "__about__.py"}


def is_test_path(path: str) -> bool:
    """A test file or test support: test_*.py, *_test.py, conftest.py, or anything under tests/, test/, testing/."""
    p = PurePosixPath(path)
    return (p.name.startswith("test_") and p.suffix == ".py") or p.name.endswith("_test.py") \
        or p.name == "conftest.py" or any(part in _TEST_DIRS for part in p.parts[:-1])


def source_modules(files: dict[str, bytes]) -> list[str]:
    """The project's own Python modules: where bugs may be injected (not tests, setup.py, docs, examples,
    benchmarks or vendored version files)."""
    out = []
    for path in sorted(files):
        p = PurePosixPath(path)
        if p.suffix != ".py" or is_test_path(path) or p.name in _SKIP_FILES:
            continue
        if any(part in _SKIP_DIRS or part.startswith(".") for part in p.parts[:-1]):
            continue
        out.append(path)
    return out


def unpack_source(source: str | os.PathLike[str], dest: str | os.PathLike[str]) -> tuple[Path, str]:
    """Unpack an sdist (``.tar.gz``/``.tgz``/``.tar.bz2``/``.zip``) into ``dest`` or take a directory as it is.
    Returns (project root, project name). Refuses archives with absolute paths, ``..`` or links out of the tree."""
    src = Path(source)
    if src.is_dir():
        return src, _project_name(src)
    if not src.exists():
        raise MakeTaskError(f"{src} does not exist: give a source distribution (.tar.gz) or a project directory")
    dest = Path(dest)
    name = src.name
    try:
        if name.endswith(ARCHIVES[:-1]):
            _extract_tar(src, dest)
        elif name.endswith(".zip"):
            _extract_zip(src, dest)
        else:
            raise MakeTaskError(f"{src} is not a source distribution: expected NAME-VERSION.tar.gz (from "
                                "`pip download --no-deps --no-binary :all: NAME==VERSION`) or a project directory")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise MakeTaskError(f"{src} is not a readable source distribution ({type(e).__name__}: {e}); expected an "
                            "sdist .tar.gz or a project directory") from None
    entries = list(dest.iterdir())
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else dest
    return root, _project_name(root, fallback=re.sub(r"(\.tar)?\.(gz|tgz|bz2|xz|zip|tar)$", "", name))


def _unsafe(name: str) -> bool:
    return name.startswith("/") or ".." in PurePosixPath(name).parts


def _extract_tar(src: Path, dest: Path) -> None:
    with tarfile.open(src) as tar:
        members = tar.getmembers()
        for m in members:
            if _unsafe(m.name):
                raise MakeTaskError(f"{src}: unsafe path {m.name!r} in the archive")
        # regular files and directories only: no links, devices or fifos out of an untrusted archive
        tar.extractall(dest, members=[m for m in members if m.isfile() or m.isdir()], filter="data")


def _extract_zip(src: Path, dest: Path) -> None:
    with zipfile.ZipFile(src) as z:
        for n in z.namelist():
            if _unsafe(n):
                raise MakeTaskError(f"{src}: unsafe path {n!r} in the archive")
        z.extractall(dest)


def _project_name(root: Path, fallback: str | None = None) -> str:
    info = root / "PKG-INFO"
    if info.is_file():
        m = re.search(r"^Name:\s*(\S+)", info.read_text(errors="replace"), re.MULTILINE)
        if m:
            return m.group(1).lower().replace("_", "-")
    base = fallback or root.name
    return re.sub(r"-\d[\w.]*$", "", base).lower().replace("_", "-") or "project"
