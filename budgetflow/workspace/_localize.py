"""Localisation: which functions of a repository an issue is most likely about, found without a model
(Agentless-style retrieval over the repository's own structure), so an agent is shown those instead of whole files.

Signals, strongest first: frames of test tracebacks that run through a source function (the deepest one most of
all: where the error surfaced), the functions the failing tests call, names the issue mentions (in backticks, or
followed by ``(``), files the issue names, and words shared between the issue and a function's body. Only source
files are candidates (test files and ``conftest.py`` are evidence, never locations)."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

_PYTEST_FRAME = re.compile(r"^(?P<file>[^\s:][^:\n]*\.py):(?P<line>\d+): in (?P<func>[\w<>.]+)", re.MULTILINE)
_PY_FRAME = re.compile(r'File "(?P<file>[^"]+\.py)", line (?P<line>\d+), in (?P<func>[\w<>.]+)')
_CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_TICKED = re.compile(r"`([^`\n]{1,80})`")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_TEST_DIRS = {"tests", "test", "testing"}
_COMMON = {"self", "cls", "return", "none", "true", "false", "assert", "test", "tests", "def", "class", "import",
           "from", "the", "and", "for", "not", "with", "this", "that", "should", "expected", "error", "value"}


@dataclass(frozen=True)
class Location:
    """A function (or method, ``Class.name``) of a source file and why it was picked."""

    path: str
    name: str
    start: int  # first line (its decorators included), 1-based
    end: int
    score: float
    why: tuple[str, ...] = field(default=())


def is_test_file(path: str) -> bool:
    p = PurePosixPath(path)
    return (p.name.startswith("test_") or p.name.endswith("_test.py") or p.name == "conftest.py"
            or any(part in _TEST_DIRS for part in p.parts[:-1]))


def functions(path: str, source: bytes | str) -> list[tuple[str, int, int, str]]:
    """(qualified name, first line, last line, body text) of every function and method of a Python file."""
    text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.split("\n")
    out: list[tuple[str, int, int, str]] = []

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                end = node.end_lineno or node.lineno
                out.append((prefix + node.name, first, end, "\n".join(lines[first - 1:end])))
                walk(node.body, prefix + node.name + ".")
            elif isinstance(node, ast.ClassDef):
                walk(node.body, prefix + node.name + ".")

    walk(tree.body, "")
    return out


def localize(files: Mapping[str, bytes], issue: str, *, failures: str = "", tests: Sequence[str] = (),
             top: int = 5) -> list[Location]:
    """The ``top`` most likely functions, best first. ``failures``: test output with tracebacks; ``tests``: pytest
    node ids of the failing tests (their source says what they call)."""
    evidence = issue + "\n" + failures
    frames = _frames(evidence, files)
    called = _called_by_tests(files, tests)
    ticked = {t.strip().rstrip("()").split(".")[-1] for t in _TICKED.findall(issue)}
    mentioned = set(_CALLED.findall(issue)) | {t for t in ticked if t.isidentifier()}
    named_files = {p for p in files if p.endswith(".py") and (p in evidence or PurePosixPath(p).name in issue)}
    words = {w.lower() for w in _WORD.findall(issue)} - _COMMON
    found: list[Location] = []
    for path, data in files.items():
        if not path.endswith(".py") or is_test_file(path):
            continue
        for qual, start, end, body in functions(path, data):
            short = qual.rsplit(".", 1)[-1]
            score, why = 0.0, []
            hits = [(depth, line) for (fpath, line, depth) in frames if fpath == path and start <= line <= end]
            if hits:
                deepest = max(d for d, _ in hits)
                score += 10 + 5 * deepest
                why.append(f"in a traceback (line {hits[0][1]})")
            if short in called:
                score += 6
                why.append("called by a failing test")
            if short in mentioned or qual in ticked:
                score += 5
                why.append("named in the issue")
            if path in named_files:
                score += 2
                why.append("its file is named in the issue")
            shared = words & {w.lower() for w in _WORD.findall(body)}
            if shared:
                score += min(2.0, 0.2 * len(shared))
            if score > 0:
                found.append(Location(path, qual, start, end, round(score, 2), tuple(why)))
    found.sort(key=lambda loc: (-loc.score, loc.end - loc.start, loc.path, loc.start))
    return _drop_nested(found)[:top]


def render_locations(files: Mapping[str, bytes], locations: Sequence[Location], max_chars: int) -> str:
    """The located functions with line numbers (best first), each under a header naming its file, lines and why,
    plus an outline of the rest of its file — at most ``max_chars`` characters."""
    out, left, outlined = [], max_chars, set()
    for loc in locations:
        lines = files[loc.path].decode("utf-8", "replace").split("\n")
        body = "\n".join(f"{n:4d}  {lines[n - 1]}" for n in range(loc.start, min(loc.end, len(lines)) + 1))
        why = f" ({'; '.join(loc.why)})" if loc.why else ""
        block = f"--- {loc.path}, lines {loc.start}-{loc.end}: {loc.name}{why} ---\n{body}\n"
        if loc.path not in outlined:
            others = [f"  def {q} (line {s})" for q, s, _, _ in functions(loc.path, files[loc.path])
                      if q != loc.name and "." not in q.removeprefix(q.split(".")[0] + ".")][:25]
            if others:
                block += f"(other functions in {loc.path}:\n" + "\n".join(others) + ")\n"
            outlined.add(loc.path)
        if len(block) > left:
            if not out and left > 300:
                out.append(block[:left] + "\n... (cut)\n")
            break
        out.append(block)
        left -= len(block)
    return "".join(out)


def _frames(text: str, files: Mapping[str, bytes]) -> list[tuple[str, int, int]]:
    """(repo path, line, depth) of traceback frames in source files; depth grows towards where the error surfaced."""
    found = []
    for rx in (_PYTEST_FRAME, _PY_FRAME):
        for i, m in enumerate(rx.finditer(text)):
            path = _repo_path(m.group("file"), files)
            if path and not is_test_file(path):
                found.append((path, int(m.group("line")), i))
    return found


def _repo_path(name: str, files: Mapping[str, bytes]) -> str | None:
    name = name.strip().lstrip("./")
    if name in files:
        return name
    tail = [p for p in files if name.endswith("/" + p) or p.endswith("/" + name)]
    return min(tail, key=len) if tail else None


def _called_by_tests(files: Mapping[str, bytes], tests: Sequence[str]) -> set[str]:
    """Names the failing tests call (their functions' bodies), plus the names their test and class names spell
    (``test_camelize`` -> camelize, ``SubslicesTests`` -> subslices)."""
    names: set[str] = set()
    for nid in tests:
        parts = nid.split("::")
        func = re.sub(r"\[.*\]$", "", parts[-1])
        names.add(func.removeprefix("test_"))
        qual = ".".join([*parts[1:-1], func])
        if len(parts) > 2:
            cls = re.sub(r"_?Tests?$|^Tests?_?", "", parts[-2])
            names.add(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls).lower())
        data = files.get(parts[0])
        if data is None:
            continue
        for name, _, _, body in functions(parts[0], data):
            if name == qual:
                names |= set(_CALLED.findall(body))
    return names - {"assert", "print", "len", "str", "int", "list", "dict", "set", "range", "assertEqual",
                    "assertTrue", "assertFalse", "assertRaises", "assertIn", "sorted", "tuple"}


def _drop_nested(found: list[Location]) -> list[Location]:
    """A function inside an already chosen one adds nothing to show."""
    kept: list[Location] = []
    for loc in found:
        if not any(k.path == loc.path and k.start <= loc.start and loc.end <= k.end for k in kept):
            kept.append(loc)
    return kept
