"""Bug injection: small, readable mutations of Python source found with ``ast`` and applied as byte-range edits of
the original text (only the mutated tokens change, so the diff is one or two lines and the file keeps its layout).

Operators: flip a comparison (``<`` -> ``<=``, ``==`` -> ``!=``, ``in`` -> ``not in``, ...), off-by-one on an integer
constant (in an index, a slice bound, a ``range`` argument, a comparison or arithmetic), swap ``and``/``or``, negate
an ``if``/``while`` condition, swap ``+`` and ``-`` (also ``+=``/``-=``), and return another local variable.
Only code inside functions is mutated (a broken module-level statement fails every test, which makes no task).
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_CMP_FLIP = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
             ast.Eq: ("==", "!="), ast.NotEq: ("!=", "=="), ast.In: ("in", "not in"), ast.NotIn: ("not in", "in"),
             ast.Is: ("is", "is not"), ast.IsNot: ("is not", "is")}
_SIMPLE = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant)


@dataclass(frozen=True)
class Mutation:
    """One edit: replace bytes [start, end) of ``path``'s source with ``replacement``."""

    path: str
    start: int
    end: int
    replacement: bytes
    kind: str  # comparison | constant | boolean | negate | arithmetic | return
    function: str  # qualified name of the enclosing function
    line: int
    description: str  # e.g. "`<` -> `<=`" (for logs and metadata, never for the issue text)

    def apply(self, source: bytes) -> bytes:
        return source[:self.start] + self.replacement + source[self.end:]

    @property
    def key(self) -> str:
        """A short stable id of this edit."""
        h = hashlib.sha256(f"{self.path}:{self.start}:{self.end}:".encode() + self.replacement)
        return h.hexdigest()[:10]


class _Offsets:
    def __init__(self, source: bytes):
        self.source = source
        self.starts = [0]
        for i, b in enumerate(source):
            if b == 0x0A:
                self.starts.append(i + 1)

    def at(self, line: int, col: int) -> int:  # ast columns are UTF-8 byte offsets
        return self.starts[line - 1] + col

    def span(self, node: ast.AST) -> tuple[int, int]:
        return self.at(node.lineno, node.col_offset), self.at(node.end_lineno, node.end_col_offset)

    def text(self, node: ast.AST) -> bytes:
        a, b = self.span(node)
        return self.source[a:b]


def _gap_token(off: _Offsets, left: ast.AST, right: ast.AST, token: str) -> tuple[int, int] | None:
    """Byte span of ``token`` in the text between two nodes, if that text is just the token (and parentheses)."""
    a, b = off.span(left)[1], off.span(right)[0]
    gap = off.source[a:b].decode("utf-8", "replace")
    if "#" in gap or "\\" in gap:
        return None
    core = gap.replace("(", " ").replace(")", " ")
    if " ".join(core.split()) != token:
        return None
    words = token.split()
    m = re.search(r"\s+".join(re.escape(w) for w in words), gap)
    if not m:
        return None
    return a + len(gap[:m.start()].encode()), a + len(gap[:m.end()].encode())


def find_mutations(path: str, source: bytes) -> list[Mutation]:
    """Every mutation this module's functions offer, in source order. Unparsable sources offer none."""
    try:
        source.decode("utf-8")  # ast's columns are UTF-8 offsets: other encodings would misplace edits
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # UnicodeDecodeError is a ValueError
        return []
    finder = _Finder(path, source)
    finder.body(tree.body, "")
    # one edit per (span, replacement); keep source order
    seen: set[tuple[int, int, bytes]] = set()
    unique = []
    for m in sorted(finder.found, key=lambda m: (m.start, m.end, m.replacement)):
        if (m.start, m.end, m.replacement) not in seen:
            seen.add((m.start, m.end, m.replacement))
            unique.append(m)
    return [m for m in unique if _parses(m.apply(source))]


@dataclass
class _Scope:
    """One function being mutated: its qualified name, the nodes left to others (f-strings, nested functions,
    decorators, the return annotation) and the local names a ``return`` may be switched to."""

    fn: ast.FunctionDef | ast.AsyncFunctionDef
    qual: str
    skip: set[int]
    local_names: list[str]


class _Finder:
    """Collects the mutations of one module, function by function (operators in ``_OPERATORS``, then constants)."""

    def __init__(self, path: str, source: bytes):
        self.path = path
        self.source = source
        self.off = _Offsets(source)
        self.found: list[Mutation] = []

    def add(self, span: tuple[int, int], replacement: bytes, kind: str, func: str, line: int, desc: str) -> None:
        a, b = span
        if self.source[a:b] == replacement:
            return
        self.found.append(Mutation(self.path, a, b, replacement, kind, func, line, desc))

    def body(self, body: list[ast.stmt], prefix: str) -> None:
        """Functions and methods in a module or class body (and in its if/try blocks, not ``__main__`` guards)."""
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.function(stmt, prefix + stmt.name)
            elif isinstance(stmt, ast.ClassDef):
                self.body(stmt.body, f"{prefix}{stmt.name}.")
            elif isinstance(stmt, (ast.If, ast.Try)) and not _is_main_guard(stmt):
                for field in ("body", "orelse", "finalbody"):
                    self.body(getattr(stmt, field, []) or [], prefix)
                for handler in getattr(stmt, "handlers", []) or []:
                    self.body(handler.body, prefix)

    def function(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, qual: str) -> None:
        scope = self._scope(fn, qual)
        for node in ast.walk(fn):
            if id(node) in scope.skip or node is fn:
                continue
            operator = _OPERATORS.get(type(node))
            if operator is not None:
                operator(self, node, scope, getattr(node, "lineno", fn.lineno))
        self._constants(scope)

    def _scope(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, qual: str) -> _Scope:
        """The function's scope; nested functions are mutated on their own (first), under their own names."""
        skip: set[int] = set()  # ids of nodes inside f-strings or nested functions (visited on their own)
        local_names = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)
                       if a.arg not in ("self", "cls")]
        for node in ast.walk(fn):
            if isinstance(node, ast.JoinedStr):
                skip.update(id(n) for n in ast.walk(node))
            elif node is not fn and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                skip.update(id(n) for n in ast.walk(node))
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.function(node, f"{qual}.{node.name}")
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id not in local_names:
                local_names.append(node.id)
        skip.update(id(n) for d in fn.decorator_list for n in ast.walk(d))
        if fn.returns is not None:
            skip.update(id(n) for n in ast.walk(fn.returns))
        return _Scope(fn, qual, skip, local_names)

    def _constants(self, scope: _Scope) -> None:
        """Off-by-one on small integer constants where that is a plausible slip (see ``_INT_CONTEXTS``)."""
        for node in ast.walk(scope.fn):
            if id(node) in scope.skip:
                continue
            if isinstance(node, ast.Call) and not _range_call(node):
                continue
            for parent_field in _INT_CONTEXTS.get(type(node), ()):
                for child in _children(node, parent_field):
                    if (isinstance(child, ast.Constant) and type(child.value) is int
                            and id(child) not in scope.skip and child.value < 10**6):
                        span = self.off.span(child)
                        if self.source[span[0]:span[1]].strip().isdigit():
                            for new in (child.value + 1, child.value - 1):
                                if new >= 0:
                                    self.add(span, str(new).encode(), "constant", scope.qual, child.lineno,
                                             f"`{child.value}` -> `{new}`")


# ---------------------------------------------------------------------------------------------------- operators
# One function per node type: (finder, node, scope, line) -> adds that node's mutations.

def _comparison(f: _Finder, node: ast.Compare, scope: _Scope, line: int) -> None:
    left = node.left
    for op, right in zip(node.ops, node.comparators, strict=True):
        flip = _CMP_FLIP.get(type(op))
        if flip:
            span = _gap_token(f.off, left, right, flip[0])
            if span:
                f.add(span, flip[1].encode(), "comparison", scope.qual, line, f"`{flip[0]}` -> `{flip[1]}`")
        left = right


def _boolean(f: _Finder, node: ast.BoolOp, scope: _Scope, line: int) -> None:
    if len(node.values) < 2:
        return
    word, other = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
    span = _gap_token(f.off, node.values[0], node.values[1], word)
    if span:
        f.add(span, other.encode(), "boolean", scope.qual, line, f"`{word}` -> `{other}`")


def _arithmetic(f: _Finder, node: ast.BinOp, scope: _Scope, line: int) -> None:
    if not isinstance(node.op, (ast.Add, ast.Sub)):
        return
    operands = (node.left, node.right)
    if any(isinstance(v, ast.Constant) and isinstance(v.value, (str, bytes)) for v in operands):
        return  # string concatenation: `-` would not even run
    if any(isinstance(v, (ast.JoinedStr, ast.List, ast.Tuple, ast.ListComp)) for v in operands):
        return
    sym, other = ("+", "-") if isinstance(node.op, ast.Add) else ("-", "+")
    span = _gap_token(f.off, node.left, node.right, sym)
    if span:
        f.add(span, other.encode(), "arithmetic", scope.qual, line, f"`{sym}` -> `{other}`")


def _augmented(f: _Finder, node: ast.AugAssign, scope: _Scope, line: int) -> None:
    if not isinstance(node.op, (ast.Add, ast.Sub)):
        return
    if isinstance(node.value, ast.Constant) and isinstance(node.value.value, (str, bytes)):
        return
    sym, other = ("+=", "-=") if isinstance(node.op, ast.Add) else ("-=", "+=")
    span = _gap_token(f.off, node.target, node.value, sym)
    if span:
        f.add(span, other.encode(), "arithmetic", scope.qual, line, f"`{sym}` -> `{other}`")


def _negate(f: _Finder, node: ast.If | ast.While, scope: _Scope, line: int) -> None:
    test = node.test
    a, b = f.off.span(test)
    text = f.source[a:b]
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = f.off.text(test.operand)
        if b"\n" not in inner:
            f.add((a, b), inner, "negate", scope.qual, line, "drop `not`")
    elif b"\n" not in text:
        new = b"not " + text if isinstance(test, _SIMPLE) else b"not (" + text + b")"
        f.add((a, b), new, "negate", scope.qual, line, "negate the condition")


def _return(f: _Finder, node: ast.Return, scope: _Scope, line: int) -> None:
    if not isinstance(node.value, ast.Name):
        return
    others = [n for n in scope.local_names if n != node.value.id]
    if others:  # a stable pick: the same source always gives the same mutant
        pick = others[int(hashlib.sha256(f"{scope.qual}:{line}".encode()).hexdigest(), 16) % len(others)]
        f.add(f.off.span(node.value), pick.encode(), "return", scope.qual, line,
              f"return `{pick}` instead of `{node.value.id}`")


_OPERATORS: dict[type, Callable[[_Finder, Any, _Scope, int], None]] = {
    ast.Compare: _comparison, ast.BoolOp: _boolean, ast.BinOp: _arithmetic, ast.AugAssign: _augmented,
    ast.If: _negate, ast.While: _negate, ast.Return: _return,
}


def _children(node: ast.AST, field: str) -> list[ast.AST]:
    value = getattr(node, field, None)
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, ast.AST) else []


def _range_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("range", "islice")


# where an integer constant is worth an off-by-one: indices, slice bounds, comparisons, arithmetic, range()/islice()
_INT_CONTEXTS: dict[type, tuple[str, ...]] = {
    ast.Subscript: ("slice",), ast.Slice: ("lower", "upper", "step"), ast.Compare: ("left", "comparators"),
    ast.BinOp: ("left", "right"), ast.AugAssign: ("value",), ast.Call: ("args",),
}


def _is_main_guard(stmt: ast.stmt) -> bool:
    t = getattr(stmt, "test", None)
    return (isinstance(t, ast.Compare) and isinstance(t.left, ast.Name) and t.left.id == "__name__") or (
        isinstance(t, ast.Name) and t.id == "TYPE_CHECKING")


def _parses(source: bytes) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True
