"""Git-style unified diffs between two working copies (what a solver's patch and a task's solution.patch are)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping


def unified_diff(before: Mapping[str, bytes | str], after: Mapping[str, bytes | str], *, context: int = 3) -> str:
    """A git-style unified diff (``diff --git a/X b/X``, new and deleted files) from ``before`` to ``after``, which
    ``git apply`` (and ``patch -p1``) accept. Binary or non-UTF-8 files that changed are listed as
    ``Binary files ... differ`` (git apply then refuses them: it needs the full index for binaries)."""
    chunks: list[str] = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        chunks.append(_file_diff(path, _bytes(old), _bytes(new), context))
    return "".join(chunks)


def _file_diff(path: str, old_b: bytes | None, new_b: bytes | None, context: int) -> str:
    """One file's section of the diff (None: the file does not exist on that side)."""
    header = [f"diff --git a/{path} b/{path}"]
    if old_b is None:
        header.append("new file mode 100644")
    elif new_b is None:
        header.append("deleted file mode 100644")
    src = "/dev/null" if old_b is None else f"a/{path}"
    dst = "/dev/null" if new_b is None else f"b/{path}"
    old_t, new_t = _text(old_b), _text(new_b)
    if old_t is None or new_t is None:
        return "\n".join(header + [f"Binary files {src} and {dst} differ"]) + "\n"
    old_lines, new_lines = _lines(old_t), _lines(new_t)
    if not old_lines and not new_lines:  # empty file created or deleted: header only
        return "\n".join(header) + "\n"
    lines: list[str] = []
    for line in difflib.unified_diff(old_lines, new_lines, src, dst, n=context):
        if line.endswith("\n"):
            lines.append(line[:-1])
        else:  # last line without a newline: git marks it
            lines.append(line)
            lines.append("\\ No newline at end of file")
    return "\n".join(header + lines) + "\n"


def _bytes(data: bytes | str | None) -> bytes | None:
    if data is None:
        return None
    return data.encode() if isinstance(data, str) else bytes(data)


def _lines(text: str) -> list[str]:
    """Lines as git sees them: split on \\n only (str.splitlines also splits on \\r, \\f, ...), ends kept."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def _text(data: bytes | None) -> str | None:
    """The file as text ("" when absent), or None when it is binary or not UTF-8."""
    if data is None:
        return ""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
