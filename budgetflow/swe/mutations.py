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
from dataclasses import dataclass

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
    off = _Offsets(source)
    out: list[Mutation] = []

    def add(node_span: tuple[int, int], replacement: bytes, kind: str, func: str, line: int, desc: str) -> None:
        a, b = node_span
        if source[a:b] == replacement:
            return
        out.append(Mutation(path, a, b, replacement, kind, func, line, desc))

    def visit_function(fn: ast.FunctionDef | ast.AsyncFunctionDef, qual: str) -> None:
        skip: set[int] = set()  # ids of nodes inside f-strings or nested functions (visited on their own)
        local_names = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)
                       if a.arg not in ("self", "cls")]
        for node in ast.walk(fn):
            if isinstance(node, ast.JoinedStr):
                skip.update(id(n) for n in ast.walk(node))
            elif node is not fn and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                skip.update(id(n) for n in ast.walk(node))
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    visit_function(node, f"{qual}.{node.name}")
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id not in local_names:
                local_names.append(node.id)
        skip.update(id(n) for d in fn.decorator_list for n in ast.walk(d))
        if fn.returns is not None:
            skip.update(id(n) for n in ast.walk(fn.returns))
        for node in ast.walk(fn):
            if id(node) in skip or node is fn:
                continue
            line = getattr(node, "lineno", fn.lineno)
            if isinstance(node, ast.Compare):
                left = node.left
                for op, right in zip(node.ops, node.comparators):
                    flip = _CMP_FLIP.get(type(op))
                    if flip:
                        span = _gap_token(off, left, right, flip[0])
                        if span:
                            add(span, flip[1].encode(), "comparison", qual, line, f"`{flip[0]}` -> `{flip[1]}`")
                    left = right
            elif isinstance(node, ast.BoolOp) and len(node.values) >= 2:
                word, other = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
                span = _gap_token(off, node.values[0], node.values[1], word)
                if span:
                    add(span, other.encode(), "boolean", qual, line, f"`{word}` -> `{other}`")
            elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
                if any(isinstance(v, ast.Constant) and isinstance(v.value, (str, bytes)) for v in (node.left, node.right)):
                    continue
                if any(isinstance(v, (ast.JoinedStr, ast.List, ast.Tuple, ast.ListComp)) for v in (node.left, node.right)):
                    continue
                sym, other = ("+", "-") if isinstance(node.op, ast.Add) else ("-", "+")
                span = _gap_token(off, node.left, node.right, sym)
                if span:
                    add(span, other.encode(), "arithmetic", qual, line, f"`{sym}` -> `{other}`")
            elif isinstance(node, ast.AugAssign) and isinstance(node.op, (ast.Add, ast.Sub)):
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, (str, bytes)):
                    continue
                sym, other = ("+=", "-=") if isinstance(node.op, ast.Add) else ("-=", "+=")
                span = _gap_token(off, node.target, node.value, sym)
                if span:
                    add(span, other.encode(), "arithmetic", qual, line, f"`{sym}` -> `{other}`")
            elif isinstance(node, (ast.If, ast.While)):
                test = node.test
                a, b = off.span(test)
                text = source[a:b]
                if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                    inner = off.text(test.operand)
                    if b"\n" not in inner:
                        add((a, b), inner, "negate", qual, line, "drop `not`")
                elif b"\n" not in text:
                    new = b"not " + text if isinstance(test, _SIMPLE) else b"not (" + text + b")"
                    add((a, b), new, "negate", qual, line, "negate the condition")
            elif isinstance(node, ast.Return) and isinstance(node.value, ast.Name):
                others = [n for n in local_names if n != node.value.id]
                if others:
                    pick = others[int(hashlib.sha256(f"{qual}:{line}".encode()).hexdigest(), 16) % len(others)]
                    add(off.span(node.value), pick.encode(), "return", qual, line,
                        f"return `{pick}` instead of `{node.value.id}`")
        for node in ast.walk(fn):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Call) and not _range_call(node):
                continue
            for parent_field in _INT_CONTEXTS.get(type(node), ()):
                for child in _children(node, parent_field):
                    if (isinstance(child, ast.Constant) and type(child.value) is int
                            and id(child) not in skip and child.value < 10**6):
                        span = off.span(child)
                        if source[span[0]:span[1]].strip().isdigit():
                            for new in (child.value + 1, child.value - 1):
                                if new >= 0:
                                    add(span, str(new).encode(), "constant", qual, child.lineno,
                                        f"`{child.value}` -> `{new}`")

    def walk_body(body: list[ast.stmt], prefix: str) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit_function(stmt, prefix + stmt.name)
            elif isinstance(stmt, ast.ClassDef):
                walk_body(stmt.body, f"{prefix}{stmt.name}.")
            elif isinstance(stmt, (ast.If, ast.Try)) and not _is_main_guard(stmt):
                for field in ("body", "orelse", "finalbody"):
                    walk_body(getattr(stmt, field, []) or [], prefix)
                for handler in getattr(stmt, "handlers", []) or []:
                    walk_body(handler.body, prefix)

    walk_body(tree.body, "")
    # one edit per (span, replacement); keep source order
    seen: set[tuple[int, int, bytes]] = set()
    unique = []
    for m in sorted(out, key=lambda m: (m.start, m.end, m.replacement)):
        if (m.start, m.end, m.replacement) not in seen:
            seen.add((m.start, m.end, m.replacement))
            unique.append(m)
    return [m for m in unique if _parses(m.apply(source))]


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
