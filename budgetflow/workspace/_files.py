"""A repository directory as a mapping ``{relative posix path: bytes}`` (what runners and agents work on), and back."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SKIP_DIRS = frozenset({".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".tox", ".nox", ".venv", "venv",
                       ".eggs", "node_modules", ".hg", ".svn"})
SKIP_SUFFIXES = (".pyc", ".pyo", ".so", ".dylib", ".dll", ".o", ".a", ".whl", ".egg", ".zip", ".tar", ".gz",
                 ".bz2", ".xz")
MAX_FILE_BYTES = 1 << 20


def repo_files(path: str | os.PathLike[str], *, max_file_bytes: int = MAX_FILE_BYTES) -> dict[str, bytes]:
    """The files of a repository directory as {relative posix path: bytes}: what a runner or an agent works on.

    Skips VCS and cache directories (.git, __pycache__, ...), compiled and archive files, symlinks, and binary
    files larger than ``max_file_bytes`` (text files of any size are kept)."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")
                             and not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if name.endswith(SKIP_SUFFIXES) or os.path.islink(full) or not os.path.isfile(full):
                continue
            data = Path(full).read_bytes()
            if len(data) > max_file_bytes and b"\0" in data[:8192]:
                continue
            out[Path(full).relative_to(root).as_posix()] = data
    return out


def write_files(files: Mapping[str, bytes | str], dest: str | os.PathLike[str]) -> Path:
    """Write a {relative path: bytes} mapping under ``dest`` (created), refusing paths that leave it."""
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    base = root.resolve()
    for rel, data in files.items():
        target = (root / rel).resolve()
        if base != target and base not in target.parents:
            raise ValueError(f"file name {rel!r} leaves the destination directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)
    return root
