"""An in-memory working copy of a repository: what a SWE trajectory reads and edits. The repository on disk is
never touched; code only ever runs in the sandbox, on a copy of these files."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

from ..workspace import unified_diff

MAX_READ_CHARS = 4000
MAX_MATCHES = 20


class ToolError(Exception):
    """A tool could not do what was asked; the message is fed back to the model."""


class WorkingCopy:
    def __init__(self, files: Mapping[str, bytes]):
        self.original = dict(files)
        self.files = dict(files)

    # ------------------------------------------------------------------ reading

    def paths(self) -> list[str]:
        return sorted(self.files)

    def text(self, path: str) -> str:
        path = self._known(path)
        try:
            return self.files[path].decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"{path} is not a UTF-8 text file") from None

    def read(self, path: str, start: int = 1, end: int | None = None) -> str:
        """The file with line numbers (a window of it if long)."""
        lines = self.text(path).split("\n")
        start = max(1, start)
        end = len(lines) if end is None else min(end, len(lines))
        out, size = [], 0
        for no in range(start, end + 1):
            line = f"{no:4d}  {lines[no - 1]}"
            size += len(line) + 1
            if size > MAX_READ_CHARS:
                out.append(f"... (cut: read {path} from line {no} on to see more)")
                break
            out.append(line)
        return "\n".join(out)

    def search(self, pattern: str) -> str:
        """grep over the copy: `path:line: text` for each match (a regex, or the literal text if it is not one)."""
        pattern = pattern.strip()
        if not pattern:
            raise ToolError("search needs a pattern")
        try:
            rx = re.compile(pattern)
        except re.error:
            rx = re.compile(re.escape(pattern))
        hits = []
        for path in self.paths():
            try:
                text = self.files[path].decode("utf-8")
            except UnicodeDecodeError:
                continue
            for no, line in enumerate(text.split("\n"), 1):
                if rx.search(line):
                    hits.append(f"{path}:{no}: {line.strip()[:160]}")
                    if len(hits) >= MAX_MATCHES:
                        return "\n".join(hits + ["... (more matches: narrow the pattern)"])
        return "\n".join(hits) if hits else f"no match for {pattern!r}"

    # ------------------------------------------------------------------ editing

    def edit(self, path: str, old: str, new: str) -> str:
        """Replace the one occurrence of `old` in `path` by `new` (exact text; if absent, a match ignoring trailing
        whitespace and the indentation of the snippet as a whole)."""
        text = self.text(path)
        if not old.strip():
            raise ToolError("edit needs the exact old text to replace (it was empty); use write to create a file")
        count = text.count(old)
        if count == 1:
            self._set(path, text.replace(old, new, 1))
            return f"edited {path}"
        if count > 1:
            raise ToolError(f"the old text appears {count} times in {path}; include more lines to make it unique")
        span = _loose_find(text, old)
        if span is None:
            raise ToolError(f"the old text is not in {path}; read the file and copy the lines exactly")
        lo, hi, indent = span
        self._set(path, text[:lo] + _reindent(new, indent) + text[hi:])
        return f"edited {path}"

    def write(self, path: str, content: str) -> str:
        path = _clean(path)
        existed = path in self.files
        self.files[path] = content.encode()
        return f"{'overwrote' if existed else 'created'} {path}"

    def replace_definitions(self, source: str) -> str:
        """Replace top-level functions/classes of the repo by the same-named ones in `source` (what a small model
        tends to answer with: the fixed function, in a python block)."""
        tree, source = _parse_prefix(source)
        defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        if not defs:
            raise ToolError("no action found, and the python block defines no function to replace")
        lines = source.split("\n")
        done = []
        for node in defs:
            path = self._defining_file(node.name)
            if path is None:
                continue
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            self._replace_def(path, node.name, "\n".join(lines[first - 1:node.end_lineno]))
            done.append(f"{node.name} in {path}")
        if not done:
            names = ", ".join(n.name for n in defs)
            raise ToolError(f"no action found, and no file of the repo defines {names}")
        return "replaced " + ", ".join(done)

    def _defining_file(self, name: str) -> str | None:
        found = []
        for path in self.paths():
            if not path.endswith(".py"):
                continue
            try:
                tree = ast.parse(self.files[path])
            except (SyntaxError, ValueError):
                continue
            if any(getattr(n, "name", None) == name for n in tree.body):
                found.append(path)
        src = [p for p in found if not p.rsplit("/", 1)[-1].startswith("test")]
        return (src or found or [None])[0]

    def _replace_def(self, path: str, name: str, new_src: str) -> None:
        text = self.text(path)
        tree = ast.parse(text)
        node = next(n for n in tree.body if getattr(n, "name", None) == name)
        lines = text.split("\n")
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        lines[first - 1:node.end_lineno] = new_src.split("\n")
        self._set(path, "\n".join(lines))

    def _set(self, path: str, text: str) -> None:
        self.files[path] = text.encode()

    def _known(self, path: str) -> str:
        path = _clean(path)
        if path not in self.files:
            near = [p for p in self.paths() if p.endswith("/" + path) or p.rsplit("/", 1)[-1] == path]
            if len(near) == 1:
                return near[0]
            raise ToolError(f"no file {path!r}; files: {', '.join(self.paths()[:30])}")
        return path

    # ------------------------------------------------------------------ results

    def changed(self) -> dict[str, str | None]:
        """Changed files: path -> new text (None: deleted)."""
        out = {}
        for path in set(self.files) | set(self.original):
            if self.files.get(path) != self.original.get(path):
                data = self.files.get(path)
                out[path] = None if data is None else data.decode("utf-8", "replace")
        return out

    def diff(self) -> str:
        return unified_diff(self.original, self.files)


def _parse_prefix(source: str) -> tuple[ast.Module, str]:
    """Parse `source`, or its longest prefix of whole lines that parses (a reply cut short by max_tokens)."""
    try:
        return ast.parse(source), source
    except SyntaxError as err:
        first_error = err
    lines = source.split("\n")
    for end in range(len(lines) - 1, 0, -1):
        prefix = "\n".join(lines[:end])
        try:
            tree = ast.parse(prefix)
        except SyntaxError:
            continue
        if any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in tree.body):
            return tree, prefix
    raise ToolError(f"the python block does not parse: {first_error.msg} (line {first_error.lineno})")


def _clean(path: str) -> str:
    path = path.strip().strip("`'\"").removeprefix("./").removeprefix("a/").removeprefix("b/")
    if not path or path.startswith("/") or ".." in path.split("/"):
        raise ToolError(f"{path!r} is not a path inside the repository")
    return path


def _loose_find(text: str, old: str) -> tuple[int, int, str] | None:
    """Find `old` line by line, ignoring trailing whitespace and a common indentation offset. Returns the character
    span of the matched lines and the indentation they have in the file, if exactly one place matches."""
    want = [ln.rstrip() for ln in old.strip("\n").split("\n")]
    base = min((len(w) - len(w.lstrip()) for w in want if w.strip()), default=0)
    want = [w[base:] if w.strip() else "" for w in want]
    lines = text.split("\n")
    found = []
    for i in range(len(lines) - len(want) + 1):
        window = lines[i:i + len(want)]
        indent = window[0][:len(window[0]) - len(window[0].lstrip())]
        if all((w == "" and not got.strip()) or got.rstrip() == indent + w for w, got in zip(want, window)):
            found.append((i, indent))
    if len(found) != 1:
        return None
    i, indent = found[0]
    lo = sum(len(ln) + 1 for ln in lines[:i])
    hi = lo + sum(len(ln) + 1 for ln in lines[i:i + len(want)]) - 1
    return lo, hi, indent


def _reindent(new: str, indent: str) -> str:
    rows = new.strip("\n").split("\n")
    base = min((len(r) - len(r.lstrip()) for r in rows if r.strip()), default=0)
    return "\n".join(indent + r[base:] if r.strip() else "" for r in rows)
