"""Make SWE-style tasks from a real project: inject one small bug into its source, keep it when the project's own
test suite catches it, and write the task (issue written from the failing tests, never from the bug).

Steps for one source (an sdist ``.tar.gz`` or an unpacked project directory):

1. read the project's files (``repo_files``), split them into tests (``test_*.py``, ``*_test.py``, ``conftest.py``,
   anything under a ``tests``/``test``/``testing`` directory) and source modules (the rest, minus setup.py, docs,
   examples, benchmarks, vendored version files);
2. run the whole test suite once in the sandbox (``RepoTestRunner``): the tests that pass there are the candidates
   for fail_to_pass / pass_to_pass (the rest are ignored);
3. propose mutations (``budgetflow.swe.mutations``) in functions, those in functions the tests mention first, kinds
   interleaved, in an order fixed by ``seed``; try them one at a time (two at once on two cores): apply the edit
   (only the mutated tokens change), run the suite, keep the mutant when 1..``max_failing`` tests fail, none of them
   by timing out, and the failures repeat on a second run of just those tests;
4. write ``OUT/<instance_id>/``: ``repo/`` (the mutated project, a one-commit git repo), ``task.json`` (fail_to_pass:
   the tests that failed; pass_to_pass: the rest that passed on the original), ``solution.patch`` (the reverse edit)
   and ``mutation.json`` (what was changed: for bookkeeping only, never shown to a solver).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..tasks.repo import (
    DEFAULT_TEST_COMMAND,
    REPO_DIR,
    _scratch_account,
    cache_root,
    git_commit_all,
    load_repo_task,
    load_repo_tasks,
    save_repo_task,
    symptom,
    write_issue,
)
from ..tasks.schemas import RepoTask
from .mutations import Mutation, find_mutations


class MakeTaskError(RuntimeError):
    """Tasks could not be made from a source; the message says why and what to try."""


_TEST_DIRS = {"tests", "test", "testing"}
_SKIP_DIRS = {"docs", "doc", "examples", "example", "benchmarks", "benchmark", "bench", "build", "dist", "scripts",
              "tools", "ci", ".github"}
_SKIP_FILES = {"setup.py", "conftest.py", "versioneer.py", "_version.py", "version.py", "__main__.py", "noxfile.py",
               "fabfile.py", "__about__.py"}


def is_test_path(path: str) -> bool:
    p = PurePosixPath(path)
    return (p.name.startswith("test_") and p.suffix == ".py") or p.name.endswith("_test.py") \
        or p.name == "conftest.py" or any(part in _TEST_DIRS for part in p.parts[:-1])


def source_modules(files: dict[str, bytes]) -> list[str]:
    """The project's own Python modules: where bugs may be injected."""
    out = []
    for path in sorted(files):
        p = PurePosixPath(path)
        if p.suffix != ".py" or is_test_path(path) or p.name in _SKIP_FILES:
            continue
        if any(part in _SKIP_DIRS or part.startswith(".") for part in p.parts[:-1]):
            continue
        out.append(path)
    return out


# ------------------------------------------------------------------------------------------------------- sources

ARCHIVES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")


def unpack_source(source: str | os.PathLike[str], dest: str | os.PathLike[str]) -> tuple[Path, str]:
    """Unpack an sdist (``.tar.gz``/``.tgz``/``.tar.bz2``/``.zip``) into ``dest`` or take a directory as it is.
    Returns (project root, project name). Refuses archives with absolute paths, ``..`` or links out of the tree."""
    src = Path(source)
    if src.is_dir():
        return src, _project_name(src)
    if not src.exists():
        raise MakeTaskError(f"{src} does not exist: give a source distribution (.tar.gz) or a project directory")
    dest = Path(dest)
    name = src.name
    try:
        if name.endswith(ARCHIVES[:-1]):
            with tarfile.open(src) as tar:
                members = tar.getmembers()
                for m in members:
                    if m.name.startswith("/") or ".." in PurePosixPath(m.name).parts:
                        raise MakeTaskError(f"{src}: unsafe path {m.name!r} in the archive")
                tar.extractall(dest, members=[m for m in members if m.isfile() or m.isdir()],
                               filter="data")
        elif name.endswith(".zip"):
            with zipfile.ZipFile(src) as z:
                for n in z.namelist():
                    if n.startswith("/") or ".." in PurePosixPath(n).parts:
                        raise MakeTaskError(f"{src}: unsafe path {n!r} in the archive")
                z.extractall(dest)
        else:
            raise MakeTaskError(f"{src} is not a source distribution: expected NAME-VERSION.tar.gz (from "
                                "`pip download --no-deps --no-binary :all: NAME==VERSION`) or a project directory")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        if isinstance(e, MakeTaskError):
            raise
        raise MakeTaskError(f"{src} is not a readable source distribution ({type(e).__name__}: {e}); expected an "
                            "sdist .tar.gz or a project directory") from None
    entries = [p for p in dest.iterdir()]
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else dest
    return root, _project_name(root, fallback=re.sub(r"(\.tar)?\.(gz|tgz|bz2|xz|zip|tar)$", "", name))


def _project_name(root: Path, fallback: str | None = None) -> str:
    info = root / "PKG-INFO"
    if info.is_file():
        m = re.search(r"^Name:\s*(\S+)", info.read_text(errors="replace"), re.MULTILINE)
        if m:
            return m.group(1).lower().replace("_", "-")
    base = fallback or root.name
    return re.sub(r"-\d[\w.]*$", "", base).lower().replace("_", "-") or "project"


# --------------------------------------------------------------------------------------------------------- making

@dataclass
class Attempt:
    mutation: Mutation
    outcome: str  # kept | no failure | too many failures | timeout | flaky | error
    failing: int = 0


@dataclass
class MakeResult:
    """What a make_tasks call produced and tried."""

    tasks: list[RepoTask]
    project: str
    baseline_passed: int
    attempts: list[Attempt] = field(default_factory=list)
    seconds: float = 0.0

    def rejected(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.attempts:
            if a.outcome != "kept":
                out[a.outcome] = out.get(a.outcome, 0) + 1
        return out


Progress = Callable[[str, int, int, int], None]  # (stage, tried, max_tries, kept)


def make_tasks(source: str | os.PathLike[str], out: str | os.PathLike[str], *, count: int = 3, seed: int = 0,
               test_command: Sequence[str] | None = None, max_tries: int | None = None, max_failing: int = 5,
               per_test_timeout_s: float = 5.0, sandbox=None, account=None, project: str | None = None,
               progress: Progress | None = None, workers: int = 2) -> MakeResult:
    """Make up to ``count`` tasks from ``source`` (an sdist or a project directory) into ``out``.

    ``max_tries`` (default ``8 * count + 8``) bounds the mutants run. Raises MakeTaskError when the source is not a
    project, has no tests, its tests do not pass, or no mutation is caught within the tries."""
    if count < 1:
        raise MakeTaskError("--count must be at least 1")
    started = time.monotonic()
    command = tuple(test_command) if test_command else DEFAULT_TEST_COMMAND
    tries = max_tries if max_tries is not None else 8 * count + 8
    from ..sandbox import Limits, get_sandbox
    from ..verifiers.repo_tests import RepoTestRunner, repo_files

    with tempfile.TemporaryDirectory(prefix="bf-make-task-") as tmp:
        root, name = unpack_source(source, tmp)
        name = project or name
        files = repo_files(root)
        for junk in [p for p in files if PurePosixPath(p).parts[0].endswith(".egg-info") or p == "PKG-INFO"]:
            files.pop(junk)
    tests = [p for p in files if is_test_path(p) and p.endswith(".py") and not p.endswith("conftest.py")]
    if not tests:
        raise MakeTaskError(f"no tests found in {source}: expected test_*.py / *_test.py files or a tests/ directory "
                            "(an sdist must include its test suite; many do, wheels never do)")
    modules = source_modules(files)
    if not modules:
        raise MakeTaskError(f"no Python source modules found in {source} besides its tests")

    runner = RepoTestRunner(sandbox or get_sandbox("process"), per_test_timeout_s=per_test_timeout_s,
                            limits=Limits(timeout_s=120.0, cpu_s=120.0, memory_bytes=1024 * (1 << 20),
                                          disk_bytes=256 * (1 << 20), file_size_bytes=64 * (1 << 20),
                                          output_bytes=16 * (1 << 20), max_processes=64))
    probe = RepoTask(instance_id=f"{name}__probe", project=name, repo=str(source), issue="", fail_to_pass=(),
                     test_command=command)
    result = MakeResult(tasks=[], project=name, baseline_passed=0)
    with _scratch_account(account, f"make-task/{name}") as acct:
        if progress:
            progress("running the original test suite", 0, tries, 0)
        base = runner.run(files, probe, None, account=acct)
        if not base.passed:
            why = base.errors.strip() or base.output_tail.strip()[-1500:]
            raise MakeTaskError(f"no test of {name} passes on the original source, so no bug can be detected "
                                f"(exit code {base.exit_code}):\n{why[-1500:]}\nCheck that the suite runs with "
                                f"`{' '.join(command)}` on /usr/bin/python3 with no extra packages, or pass "
                                "--test-cmd.")
        result.baseline_passed = len(base.passed)
        candidates = _order(modules, files, tests, seed)[:tries]
        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        kept: list[RepoTask] = []

        def attempt(m: Mutation):
            mutated = dict(files)
            mutated[m.path] = m.apply(files[m.path])
            report = runner.run(mutated, probe, None, account=acct)
            failing = sorted(base.passed & report.failed)
            if not failing:
                return m, mutated, report, failing, "no failure"
            if len(failing) > max_failing:
                return m, mutated, report, failing, "too many failures"
            if any("Timeout >" in report.details.get(t, "") for t in failing) or report.timed_out:
                return m, mutated, report, failing, "timeout"
            again = runner.run(mutated, probe, failing, account=acct)
            if set(failing) - again.failed:
                return m, mutated, report, failing, "flaky"
            return m, mutated, report, failing, "kept"

        tried = 0
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            i = 0
            while i < len(candidates) and len(kept) < count:
                batch = candidates[i:i + max(1, workers)]
                i += len(batch)
                for m, mutated, report, failing, outcome in pool.map(attempt, batch):
                    tried += 1
                    if outcome == "kept":
                        if len(kept) < count:
                            kept.append(_write_task(out_dir, name, files, mutated, m, base, report, failing,
                                                    command, seed))
                        else:
                            outcome = "surplus"
                    result.attempts.append(Attempt(m, outcome, len(failing)))
                    if progress:
                        progress(f"{name}: {m.path}:{m.line}", tried, len(candidates), len(kept))
    result.tasks = kept
    result.seconds = time.monotonic() - started
    if not kept:
        rejected = ", ".join(f"{v} {k}" for k, v in result.rejected().items()) or "no candidates"
        raise MakeTaskError(f"no mutation of {name} was caught by its tests within {tried} tries ({rejected}); "
                            f"{len(base.passed)} tests pass on the original. Try more tries (--max-tries), another "
                            "--seed, or a larger --max-failing.")
    return result


def _order(modules: list[str], files: dict[str, bytes], tests: list[str], seed: int) -> list[Mutation]:
    """Candidates in trying order: functions the tests mention first, kinds interleaved, shuffled by ``seed``."""
    test_text = b"\n".join(files[t] for t in tests).decode("utf-8", "replace")
    words = set(re.findall(r"[A-Za-z_]\w*", test_text))
    rng = random.Random(seed)
    mentioned: dict[str, list[Mutation]] = {}
    others: dict[str, list[Mutation]] = {}
    for path in modules:
        for m in find_mutations(path, files[path]):
            short = m.function.rsplit(".", 1)[-1]
            target = mentioned if (short in words and not short.startswith("__")) else others
            target.setdefault(m.kind, []).append(m)
    ordered: list[Mutation] = []
    for group in (mentioned, others):
        kinds = sorted(group)
        for k in kinds:
            rng.shuffle(group[k])
        rng.shuffle(kinds)
        # round robin over kinds; at most two mutants of one function in a row of picks
        seen_funcs: dict[str, int] = {}
        queues = [list(group[k]) for k in kinds]
        deferred: list[Mutation] = []
        while any(queues):
            for q in queues:
                if q:
                    m = q.pop()
                    key = f"{m.path}:{m.function}"
                    if seen_funcs.get(key, 0) >= 1:
                        deferred.append(m)
                        continue
                    seen_funcs[key] = seen_funcs.get(key, 0) + 1
                    ordered.append(m)
        ordered.extend(deferred)
    return ordered


def _write_task(out_dir: Path, project: str, original: dict[str, bytes], mutated: dict[str, bytes], m: Mutation,
                base, report, failing: list[str], command: Sequence[str], seed: int) -> RepoTask:
    from ..verifiers.repo_tests import unified_diff, write_files

    digest = hashlib.sha256(f"{project}:{m.path}:{m.key}".encode()).hexdigest()[:8]
    iid = f"{project}__{digest}"
    final = out_dir / iid
    tmp = out_dir / f".build-{iid}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    repo = tmp / REPO_DIR
    write_files(mutated, repo)
    git_commit_all(repo, f"{project}: source and tests")
    pass_to_pass = sorted(base.passed & report.passed)
    tests_dirs = ("tests/", "test/", "testing/")

    def is_test_file(p: str) -> bool:
        return is_test_path(p) or p.startswith(tests_dirs)

    failures = [(t, report.details.get(t, "")) for t in failing]
    how = symptom(failures[0][1], short=True)
    title = f"{project}: `{_short(failing[0])}` fails ({how})"
    issue = write_issue(project, failures, test_command=command, is_test_file=is_test_file,
                        context=_context(project, failing, report), title=title)
    task = RepoTask(instance_id=iid, project=project, repo=str(repo), issue=issue, test_command=tuple(command),
                    fail_to_pass=tuple(failing), pass_to_pass=tuple(pass_to_pass), hidden_tests=False)
    save_repo_task(task, tmp, solution_patch=unified_diff({m.path: mutated[m.path]}, {m.path: original[m.path]}))
    (tmp / "mutation.json").write_text(json.dumps({
        "path": m.path, "line": m.line, "function": m.function, "kind": m.kind, "description": m.description,
        "seed": seed, "fail_to_pass": len(failing), "pass_to_pass": len(pass_to_pass)}, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return load_repo_task(final)


def _short(nodeid: str) -> str:
    parts = nodeid.split("::")
    return "::".join(parts[-2:]) if len(parts) > 2 else parts[-1]


def _context(project: str, failing: list[str], report) -> str:
    kinds = sorted({symptom(report.details.get(t, ""), short=True) for t in failing})
    where = sorted({t.split("::")[0] for t in failing})
    return (f"{project}'s own test suite catches a bug: {len(failing)} test{'s' if len(failing) != 1 else ''} in "
            f"{', '.join(f'`{w}`' for w in where)} fail{'s' if len(failing) == 1 else ''} "
            f"({'; '.join(kinds)}). The tests are right; the code they test is not.")


# ------------------------------------------------------------------------------------------- pinned fixtures

# Small, pure-Python projects whose sdists carry a pytest suite that runs on Debian's python3-pytest (7.2,
# /usr/bin/python3 3.11) with no other packages, in about a second. (project, version, tasks to make, seed)
SWE_PROJECTS: tuple[tuple[str, str, int, int], ...] = (
    ("inflection", "0.5.1", 4, 0),
    ("toolz", "0.12.1", 4, 0),
    ("more-itertools", "10.2.0", 4, 0),
)
_FIXTURES_FORMAT = 3


def sdist_path(name: str, version: str, *, download: bool = True) -> Path:
    """``<cache>/sdists/NAME-VERSION.tar.gz``, fetched with ``pip download --no-binary :all:`` when missing."""
    dest = cache_root() / "sdists"
    stems = {f"{name}-{version}", f"{name.replace('-', '_')}-{version}"}
    for stem in stems:
        for ext in (".tar.gz", ".zip"):
            if (dest / f"{stem}{ext}").is_file():
                return dest / f"{stem}{ext}"
    if not download:
        raise MakeTaskError(f"{name}=={version} sdist is not in {dest}: run `pip download --no-deps --no-binary "
                            f":all: {name}=={version} -d {dest}`")
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                           "--disable-pip-version-check", "-q", f"{name}=={version}", "-d", str(dest)],
                          capture_output=True, text=True, check=False)
    for stem in stems:
        for ext in (".tar.gz", ".zip"):
            if (dest / f"{stem}{ext}").is_file():
                return dest / f"{stem}{ext}"
    raise MakeTaskError(f"could not download the {name}=={version} sdist into {dest}: {proc.stderr.strip()[-500:]}")


def ensure_swe_fixtures(root: str | os.PathLike[str] | None = None, *, projects=SWE_PROJECTS, sandbox=None,
                        progress: Progress | None = None) -> list[RepoTask]:
    """The pinned projects' sdists in ``<cache>/sdists`` and the tasks made from them in ``root`` (default
    ``<cache>/swe-tasks``): made once, reused while the pins are unchanged."""
    from ..tasks.repo import _locked

    base = Path(root) if root else cache_root() / "swe-tasks"
    pins = [list(p) for p in projects]
    with _locked(base.parent / f".{base.name}.lock"):
        index = base / "index.json"
        try:
            info = json.loads(index.read_text())
        except (OSError, ValueError):
            info = None
        if (isinstance(info, dict) and info.get("format") == _FIXTURES_FORMAT and info.get("pins") == pins
                and all((base / iid / "task.json").is_file() for iid in info.get("tasks", []))):
            return [load_repo_task(base / iid) for iid in info["tasks"]]
        base.mkdir(parents=True, exist_ok=True)
        for old in base.iterdir():  # earlier fixtures only: task directories and unfinished builds
            if old.is_dir() and ((old / "task.json").is_file() or old.name.startswith(".build-")):
                shutil.rmtree(old)
        ids: list[str] = []
        summary = {}
        for name, version, count, seed in projects:
            res = make_tasks(sdist_path(name, version), base, count=count, seed=seed, sandbox=sandbox,
                             progress=progress)
            ids += [t.instance_id for t in res.tasks]
            summary[name] = {"version": version, "tasks": len(res.tasks), "tried": len(res.attempts),
                             "rejected": res.rejected(), "seconds": round(res.seconds, 1)}
        index.write_text(json.dumps({"format": _FIXTURES_FORMAT, "pins": pins, "tasks": ids, "projects": summary},
                                    indent=2) + "\n")
        return load_repo_tasks_by_id(base, ids)


def load_repo_tasks_by_id(base: Path, ids: Sequence[str]) -> list[RepoTask]:
    return [load_repo_task(base / iid) for iid in ids]


__all__ = [
    "SWE_PROJECTS",
    "MakeResult",
    "MakeTaskError",
    "ensure_swe_fixtures",
    "is_test_path",
    "load_repo_tasks",
    "make_tasks",
    "sdist_path",
    "source_modules",
    "unpack_source",
]
