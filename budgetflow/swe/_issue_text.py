"""Issue text written from failing tests only (what fails and how), never from the bug or its fix."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

_FRAME = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+): in (?P<func>\S+)\s*$")
_ERROR_NAME = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))\b")

PathTest = Callable[[str], bool]


def _any_path(path: str) -> bool:
    return True


def trim_failure(text: str, *, is_test_file: PathTest = _any_path, max_lines: int = 25) -> str:
    """pytest's short traceback of one failure, trimmed for an issue: frames in test files keep their source line;
    frames elsewhere keep only their location (a bug report shows where it broke, not the code to change);
    the error lines (``E ...``) are kept, at most ``max_lines`` lines in all."""
    out: list[str] = []
    keep_source = True
    for line in text.splitlines():
        m = _FRAME.match(line)
        if m:
            keep_source = is_test_file(m.group("file"))
            out.append(line)
            continue
        if line.startswith(("E ", "E\t")) or line == "E":
            out.append(line.rstrip())
            continue
        if keep_source and line.strip():
            out.append(line.rstrip())
    if len(out) > max_lines:
        head = [line for line in out if not line.startswith("E")][: max_lines // 3]
        errs = [line for line in out if line.startswith("E")][-(max_lines - len(head) - 1):]
        out = head + ["..."] + errs
    return "\n".join(out).strip()


def symptom(failure_text: str, *, short: bool = False) -> str:
    """How a test failed, from its failure text: 'hangs (the test times out)', 'raises IndexError' or 'returns a
    wrong result' (``short``: 'times out', 'IndexError', 'wrong result')."""
    errs = [line[1:].strip() for line in failure_text.splitlines() if line.startswith("E")]
    joined = "\n".join(errs)
    if "Timeout >" in joined or "Failed: Timeout" in joined:
        return "times out" if short else "hangs (the test times out)"
    for e in errs:
        m = _ERROR_NAME.match(e)
        if m and m.group(1) not in ("AssertionError", "assert"):
            name = m.group(1).rsplit(".", 1)[-1]
            return name if short else f"raises {name}"
    return "wrong result" if short else "returns a wrong result"


def write_issue(subject: str, failures: Sequence[tuple[str, str]], *, test_command: Sequence[str],
                n_failing: int | None = None, is_test_file: PathTest = _any_path, examples: int = 2,
                context: str = "", title: str | None = None) -> str:
    """An issue written from failing tests only: what fails, how (error lines, expected vs got), trimmed
    tracebacks of up to ``examples`` failures. ``failures`` = [(node id, pytest failure text)]. The first line is
    ``title``, else ``subject`` followed by how the first test failed ("`gcd()` returns a wrong result")."""
    failures = list(failures)
    n = n_failing if n_failing is not None else len(failures)
    how = symptom(failures[0][1]) if failures else "misbehaves"
    lines = [title or f"{subject} {how}", ""]
    if context:
        lines += [context, ""]
    cmd = " ".join(test_command)
    lines.append(f"Running the test suite (`{cmd}`), {n} test{'s' if n != 1 else ''} fail{'s' if n == 1 else ''}:")
    for nid, _ in failures[:5]:
        lines.append(f"- `{nid}`")
    if n > 5:
        lines.append(f"- ... and {n - 5} more")
    for nid, text in failures[:examples]:
        trimmed = trim_failure(text, is_test_file=is_test_file)
        if trimmed:
            lines += ["", f"`{nid}`:", "```", trimmed, "```"]
    lines += ["", "Expected: these tests pass, and the rest of the test suite keeps passing."]
    return "\n".join(lines) + "\n"
