"""Repository test runner: run a project's pytest suite (or chosen node ids) against a working copy of a repository
inside the sandbox, under a reservation of CPU-seconds on the caller's account, and report which tests passed.

How one run works. The working copy (``files``: relative path -> bytes) becomes the sandbox's work dir. A small
supervisor program (stdlib only, run with the sandbox's interpreter) reads its settings and a random per-run marker
from standard input, makes itself non-dumpable (so a test, running as the same uid, cannot read its memory through
``/proc``), then runs the task's ``test_command`` as a child process with a tiny pytest plugin that appends one JSON
line per test outcome to a file. When the child ends (or its deadline passes) the supervisor prints the outcomes on
one line behind the marker. The tests never see the marker: a test that prints fake pytest or JUnit summary lines,
or fake result lines, changes nothing.

Limits of that guarantee: the tests run inside pytest's own process, so code written against this harness (it can
append forged lines to the plugin's result file, or monkeypatch pytest's hooks, and then end the process before the
real outcomes are written) can still forge outcomes, as with every pytest-based harness (SWE-bench's included). A
forged "passed" never overrides a real failure recorded for the same test, though. Score a patch with the task's own
test files restored (``scoring_files``), so the patch cannot rewrite or replace the tests that judge it.

Selection is done inside pytest (a collection hook keeps the requested node ids), not on the command line, so a node
id that no longer exists is reported as failed instead of aborting the whole run (pytest exits with a usage error
on an unknown node id). ``per_file=True`` runs one pytest process per test file (QuixBugs-style suites whose files
must not share a process; a crash then costs one file, not the run), at the price of one interpreter start per file.
"""

from __future__ import annotations

import difflib
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..budget import Account
from ..sandbox import ExecResult, Limits, Sandbox, get_sandbox
from ..tasks.schemas import RepoTask
from .metered import marked_json, metered_run, worst_case_cpu

MiB = 1 << 20

# The pytest plugin, loaded in the child with `-p`. Appends one JSON object per line, flushed at once, so a run that
# crashes or is killed half-way still reports the tests it finished.
_PLUGIN = r'''
import json as _json, os as _os

_OUT = open(_os.environ["BF_REPORT_OUT"], "a", buffering=1)
_SELECT = None
if _os.environ.get("BF_REPORT_SELECT"):
    with open(_os.environ["BF_REPORT_SELECT"]) as _f:
        _SELECT = set(_json.load(_f))
_LIMIT = 4000


def _emit(obj):
    _OUT.write(_json.dumps(obj) + "\n")
    _OUT.flush()


def pytest_collection_modifyitems(session, config, items):
    if _SELECT is None:
        return
    keep = [it for it in items if it.nodeid in _SELECT]
    drop = [it for it in items if it.nodeid not in _SELECT]
    items[:] = keep
    if drop:
        config.hook.pytest_deselected(items=drop)


def pytest_collectreport(report):
    if report.failed:
        text = str(report.longreprtext or "")
        _emit({"kind": "collect", "id": report.nodeid, "text": text[-_LIMIT:]})


def pytest_runtest_logreport(report):
    if report.failed:
        outcome = "failed"  # in setup or teardown too: an error spoils the test
    elif report.skipped:
        outcome = "passed" if hasattr(report, "wasxfail") else "skipped"  # xfail counts as passing, like SWE-bench
    else:
        outcome = "passed"
    if report.when == "call" or outcome != "passed":  # setup/teardown matter only when they did not pass
        text = str(report.longreprtext or "") if outcome == "failed" else ""
        _emit({"kind": "test", "id": report.nodeid, "when": report.when, "outcome": outcome, "text": text[-_LIMIT:],
               "duration": round(float(getattr(report, "duration", 0.0) or 0.0), 4)})
'''

# The supervisor: run as `python -I -c _SUPERVISOR`, settings (and the marker) on stdin.
_SUPERVISOR = r'''
import json, os, resource, signal, subprocess, sys, time

cfg = json.loads(sys.stdin.read())
sys.stdin.close()
mark = cfg.pop("mark")
try:  # not dumpable: a test running as our uid cannot open /proc/<our pid>/mem or /fd
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
except Exception:
    pass
start = time.monotonic()
work = os.getcwd()
state = os.path.join(work, cfg["state_dir"])
os.makedirs(state, exist_ok=True)
with open(os.path.join(state, "_bf_report.py"), "w") as f:
    f.write(cfg["plugin"])
results_path = os.path.join(state, "results.jsonl")
select_path = ""
if cfg["tests"] is not None:
    select_path = os.path.join(state, "select.json")
    with open(select_path, "w") as f:
        json.dump(cfg["tests"], f)
env = dict(os.environ)
env.update(BF_REPORT_OUT=results_path, BF_REPORT_SELECT=select_path, PYTHONDONTWRITEBYTECODE="1",
           PYTHONPATH=state + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""))
env.pop("PYTEST_ADDOPTS", None)
extra = ["-p", "_bf_report", "--rootdir", work]
if cfg["per_test_timeout"]:
    try:
        import importlib.util
        if importlib.util.find_spec("pytest_timeout") is not None:
            extra.append("--timeout=%g" % cfg["per_test_timeout"])
    except Exception:
        pass
extra += cfg["extra_args"]

groups = cfg["groups"]  # list of argument lists, one pytest process each
cpu_left = float(cfg["cpu_s"])
deadline = start + float(cfg["deadline_s"])
codes, notes, skipped_groups = [], [], []
log_path = os.path.join(state, "output.log")
log = open(log_path, "ab")

def _used():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime + me.ru_utime + me.ru_stime

timed_out = False
for args in groups:
    remaining_cpu = cpu_left - _used()
    remaining_wall = deadline - time.monotonic()
    if remaining_cpu < 1 or remaining_wall < 0.5:
        skipped_groups.append(args)
        continue
    soft = max(1, int(remaining_cpu))

    def _limit(soft=soft):
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))

    log.write(("\n$ " + " ".join(cfg["command"] + args) + "\n").encode())
    log.flush()
    try:
        proc = subprocess.Popen(cfg["command"] + extra + args, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=work, preexec_fn=_limit,
                                start_new_session=True)
    except OSError as e:
        notes.append("cannot run %r: %s" % (cfg["command"][0], e))
        codes.append(127)
        break
    try:
        codes.append(proc.wait(timeout=remaining_wall))
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        codes.append(-9)
        notes.append("stopped after %.1f s (the run's time limit)" % (time.monotonic() - start))
    finally:
        try:  # nothing the tests started may outlive their group
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
log.close()

records = []
try:
    with open(results_path, errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                records.append(rec)
except OSError:
    pass
tail = ""
try:
    with open(log_path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - cfg["tail_bytes"]))
        tail = f.read().decode("utf-8", "replace")
except OSError:
    pass
if skipped_groups:
    notes.append("not run, CPU or time budget spent: " + ", ".join(" ".join(g) for g in skipped_groups))
payload = {"records": records, "codes": codes, "notes": notes, "timed_out": timed_out, "tail": tail,
           "not_run": [a for g in skipped_groups for a in g]}
sys.stdout.flush()
sys.stdout.write("\n" + mark + json.dumps(payload) + "\n")
sys.stdout.flush()
'''


class RepoTestReport(BaseModel):
    """Per-test outcomes of one run of a repository's tests.

    ``passed``/``failed``/``skipped`` hold pytest node ids relative to the repo root (xfail counts as passed, an error
    in setup or teardown as failed, a requested test that did not run — missing, crashed, out of time — as failed).
    ``errors`` describes what went wrong beyond individual tests (collection errors, a crash, the time limit);
    ``details`` maps failed node ids to pytest's (trimmed) failure text."""

    model_config = ConfigDict(frozen=True)

    passed: frozenset[str] = frozenset()
    failed: frozenset[str] = frozenset()
    skipped: frozenset[str] = frozenset()
    errors: str = ""
    exit_code: int = 0
    timed_out: bool = False
    cpu_s: float = 0.0
    output_tail: str = ""
    details: dict[str, str] = Field(default_factory=dict)
    durations: dict[str, float] = Field(default_factory=dict)  # seconds each test's call phase took
    killed_by: str | None = None

    def resolved(self, task: RepoTask) -> bool:
        """The task is solved: every fail_to_pass test and every pass_to_pass test passed."""
        return all(t in self.passed for t in task.fail_to_pass) and all(t in self.passed for t in task.pass_to_pass)

    def summary(self, task: RepoTask | None = None) -> str:
        """One line, e.g. `12 passed, 2 failed` or, with a task, `fail_to_pass 1/2, pass_to_pass 10/10`."""
        if task is None:
            return f"{len(self.passed)} passed, {len(self.failed)} failed" + (
                f", {len(self.skipped)} skipped" if self.skipped else "")
        f2p = sum(t in self.passed for t in task.fail_to_pass)
        p2p = sum(t in self.passed for t in task.pass_to_pass)
        return (f"fail_to_pass {f2p}/{len(task.fail_to_pass)}, pass_to_pass {p2p}/{len(task.pass_to_pass)}"
                + (" (resolved)" if self.resolved(task) else ""))


class RepoTestRunner:
    """Runs a repository's tests in a sandbox. Each run reserves its worst-case CPU time (and its price, if
    ``usd_per_cpu_second`` is set) on the account first, then commits the CPU time the sandbox measured.

    ``per_file``: one pytest process per test file (see the module doc). ``per_test_timeout_s``: pytest-timeout's
    default per test (tests' own ``@pytest.mark.timeout`` wins), when the plugin is installed in the sandbox."""

    def __init__(self, sandbox: Sandbox | None = None, *, usd_per_cpu_second: float = 0.0,
                 limits: Limits | None = None, per_file: bool = False, per_test_timeout_s: float | None = 10.0,
                 extra_args: Sequence[str] = ("--tb=short",)):
        self.sandbox = sandbox or get_sandbox("auto")
        self.limits = limits or Limits(timeout_s=60.0, cpu_s=60.0, memory_bytes=512 * MiB, disk_bytes=256 * MiB,
                                       file_size_bytes=64 * MiB, output_bytes=8 * MiB, max_processes=64)
        self.usd_per_cpu_second = usd_per_cpu_second
        self.per_file = per_file
        self.per_test_timeout_s = per_test_timeout_s
        self.extra_args = tuple(extra_args)

    def worst_case(self) -> dict[str, float]:
        """What one run can cost at most (see metered.worst_case_cpu)."""
        return worst_case_cpu(self.sandbox, self.limits, self.usd_per_cpu_second)

    def run(self, files: Mapping[str, bytes], task: RepoTask, tests: Sequence[str] | None = None, *,
            account: Account) -> RepoTestReport:
        """Run ``task.test_command`` at the root of a copy of ``files`` (the agent's working copy), restricted to the
        node ids ``tests`` (None: the whole suite). Raises BudgetExceeded, before running anything, if the account
        cannot afford the worst case."""
        wanted = None if tests is None else list(dict.fromkeys(tests))
        work = {k: (v.encode() if isinstance(v, str) else bytes(v)) for k, v in files.items()}
        groups, missing = _groups(wanted, work, self.per_file)
        if wanted is not None and not groups:  # nothing runnable: answer without spending anything
            return _missing_report(wanted, missing)
        mark = f"__bf_repo_tests_{secrets.token_hex(16)}__ "
        state_dir = f".bf-{secrets.token_hex(6)}"
        cfg = {
            "mark": mark, "state_dir": state_dir, "plugin": _PLUGIN, "tests": wanted, "groups": groups,
            "command": list(task.test_command), "extra_args": list(self.extra_args),
            "per_test_timeout": self.per_test_timeout_s, "cpu_s": self.limits.cpu_s,
            "deadline_s": max(1.0, self.limits.timeout_s - min(5.0, self.limits.timeout_s * 0.1)),
            "tail_bytes": 6000,
        }
        python = "{python}" if getattr(self.sandbox, "name", "").startswith("process") else "python3"
        result, cpu = metered_run(account, self.sandbox, self.limits, self.usd_per_cpu_second, lambda: self.sandbox.run(
            [python, "-I", "-c", _SUPERVISOR], files=work, limits=self.limits, stdin=json.dumps(cfg)))
        return _parse(result, mark, wanted, missing, cpu)


def _test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _groups(wanted: list[str] | None, files: Mapping[str, bytes], per_file: bool) -> tuple[list[list[str]], list[str]]:
    """Argument lists, one per pytest process, and the requested ids whose file is not in the working copy."""
    if wanted is None:
        if not per_file:
            return [[]], []
        found = sorted(p for p in files if _looks_like_test_file(p))
        return ([[p] for p in found] or [[]]), []
    paths: dict[str, None] = {}
    missing = []
    for nid in wanted:
        path = _test_file(nid)
        if path in files or any(k.startswith(path.rstrip("/") + "/") for k in files):
            paths.setdefault(path, None)
        else:
            missing.append(nid)
    if per_file:
        return [[p] for p in paths], missing
    return ([list(paths)] if paths else []), missing


def _looks_like_test_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    hidden = any(part.startswith(".") for part in path.split("/"))
    return not hidden and name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def _missing_report(wanted: list[str], missing: list[str]) -> RepoTestReport:
    return RepoTestReport(failed=frozenset(wanted), exit_code=4,
                          errors="test files not in the working copy: " + ", ".join(sorted({_test_file(m) for m in missing})),
                          details={m: "test file not found in the working copy" for m in missing})


def _parse(result: ExecResult, mark: str, wanted: list[str] | None, missing: list[str], cpu: float) -> RepoTestReport:
    payload = marked_json(result.stdout, mark)
    if not isinstance(payload, dict):
        why = result.killed_by or f"exit {result.exit_code}"
        err = f"the test run ended before reporting ({why}): {result.stderr.strip()[-500:]}"
        return RepoTestReport(failed=frozenset(wanted or ()), errors=err, exit_code=result.exit_code,
                              timed_out=result.timed_out, cpu_s=cpu, output_tail=result.stdout[-4000:],
                              killed_by=result.killed_by, details={t: err for t in wanted or ()})
    outcome: dict[str, str] = {}
    details: dict[str, str] = {}
    durations: dict[str, float] = {}
    problems: list[str] = []
    for rec in payload.get("records", []):
        if not isinstance(rec, dict):
            continue
        nid = str(rec.get("id", ""))
        if rec.get("kind") == "collect":
            problems.append(f"collection error in {nid or 'the session'}:\n{_trim(str(rec.get('text', '')), 1500)}")
            if wanted is None and nid:
                outcome[nid] = "failed"
                details[nid] = str(rec.get("text", ""))
        elif rec.get("kind") == "test" and nid:
            state = str(rec.get("outcome"))
            if outcome.get(nid) == "failed" and state != "failed":
                continue  # a failure (e.g. in teardown) is never undone
            outcome[nid] = state if state in ("passed", "failed", "skipped") else "failed"
            if rec.get("when") == "call" and isinstance(rec.get("duration"), (int, float)):
                durations[nid] = float(rec["duration"])
            if outcome[nid] == "failed" and rec.get("text"):
                details[nid] = str(rec["text"])
    if wanted is not None:
        wanted_set = set(wanted)
        outcome = {k: v for k, v in outcome.items() if k in wanted_set}
        not_run = [t for t in wanted if t not in outcome]
        for t in not_run:
            outcome[t] = "failed"
            details.setdefault(t, "test file not found in the working copy" if t in missing
                               else "did not run: no such test, or the run crashed or was stopped before it")
        if missing:
            problems.append("test files not in the working copy: " + ", ".join(sorted({_test_file(m) for m in missing})))
    problems.extend(str(n) for n in payload.get("notes", []))
    if result.killed_by:
        problems.append(f"the sandbox stopped the run: {result.killed_by}")
    codes = [int(c) for c in payload.get("codes", []) if isinstance(c, int)]
    exit_code = next((c for c in codes if c not in (0, 5)), codes[0] if codes else result.exit_code)
    return RepoTestReport(
        passed=frozenset(k for k, v in outcome.items() if v == "passed"),
        failed=frozenset(k for k, v in outcome.items() if v == "failed"),
        skipped=frozenset(k for k, v in outcome.items() if v == "skipped"),
        errors="\n".join(problems), exit_code=exit_code,
        timed_out=bool(payload.get("timed_out")) or result.timed_out, cpu_s=cpu,
        output_tail=str(payload.get("tail", ""))[-4000:], details=details,
        durations={k: v for k, v in durations.items() if k in outcome}, killed_by=result.killed_by)


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


# ----------------------------------------------------------------------------------------------------- repo files

SKIP_DIRS = frozenset({".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".tox", ".nox", ".venv", "venv",
                       ".eggs", "node_modules", ".hg", ".svn"})
SKIP_SUFFIXES = (".pyc", ".pyo", ".so", ".dylib", ".dll", ".o", ".a", ".whl", ".egg", ".zip", ".tar", ".gz",
                 ".bz2", ".xz")
MAX_FILE_BYTES = 1 * MiB


def repo_files(path: str | os.PathLike[str], *, max_file_bytes: int = MAX_FILE_BYTES) -> dict[str, bytes]:
    """The files of a repository directory as {relative posix path: bytes}: what a runner or an agent works on.

    Skips VCS and cache directories (.git, __pycache__, ...), compiled and archive files, symlinks, and binary
    files larger than ``max_file_bytes`` (text files of any size are kept)."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")
                             and not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if name.endswith(SKIP_SUFFIXES) or os.path.islink(full) or not os.path.isfile(full):
                continue
            data = Path(full).read_bytes()
            if len(data) > max_file_bytes and b"\0" in data[:8192]:
                continue
            out[Path(full).relative_to(root).as_posix()] = data
    return out


def write_files(files: Mapping[str, bytes], dest: str | os.PathLike[str]) -> Path:
    """Write a {relative path: bytes} mapping under ``dest`` (created), refusing paths that leave it."""
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    base = root.resolve()
    for rel, data in files.items():
        target = (root / rel).resolve()
        if base != target and base not in target.parents:
            raise ValueError(f"file name {rel!r} leaves the destination directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)
    return root


_TEST_CONFIG = frozenset({"conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml", ".pytest.ini"})


def scoring_files(task: RepoTask, files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The working copy as the scorer should run it: the task's test files (those holding fail_to_pass /
    pass_to_pass tests), every ``conftest.py`` and the pytest configuration files restored from ``task.repo``, and
    ``conftest.py`` files the working copy added removed. So a patch cannot rewrite, replace or hook the tests that
    judge it from the test side (code under test still runs inside pytest's process: see the module doc)."""
    original = repo_files(task.repo) if Path(task.repo).is_dir() else {}
    out = dict(files)
    for rel in [p for p in out if p.rsplit("/", 1)[-1] == "conftest.py" and p not in original]:
        del out[rel]
    wanted = {_test_file(nid) for nid in (*task.fail_to_pass, *task.pass_to_pass)}
    for rel, data in original.items():
        if rel in wanted or rel.rsplit("/", 1)[-1] in _TEST_CONFIG:
            out[rel] = data
    return out


def unified_diff(before: Mapping[str, bytes], after: Mapping[str, bytes], *, context: int = 3) -> str:
    """A git-style unified diff (``diff --git a/X b/X``, new and deleted files) from ``before`` to ``after``, which
    ``git apply`` (and ``patch -p1``) accept. Binary or non-UTF-8 files that changed are listed as
    ``Binary files ... differ`` (git apply then refuses them: it needs the full index for binaries)."""
    chunks: list[str] = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        old_b = None if old is None else (old.encode() if isinstance(old, str) else bytes(old))
        new_b = None if new is None else (new.encode() if isinstance(new, str) else bytes(new))
        header = [f"diff --git a/{path} b/{path}"]
        if old_b is None:
            header.append("new file mode 100644")
        elif new_b is None:
            header.append("deleted file mode 100644")
        old_t, new_t = _text(old_b), _text(new_b)
        if old_t is None or new_t is None:
            src = "/dev/null" if old_b is None else f"a/{path}"
            dst = "/dev/null" if new_b is None else f"b/{path}"
            chunks.append("\n".join(header + [f"Binary files {src} and {dst} differ"]) + "\n")
            continue
        old_lines, new_lines = _lines(old_t), _lines(new_t)
        if not old_lines and not new_lines:  # empty file created or deleted: header only
            chunks.append("\n".join(header) + "\n")
            continue
        body = list(difflib.unified_diff(old_lines, new_lines,
                                         "/dev/null" if old_b is None else f"a/{path}",
                                         "/dev/null" if new_b is None else f"b/{path}", n=context))
        text = header[:]
        lines = []
        for line in body:
            if line.endswith("\n"):
                lines.append(line[:-1])
            else:  # last line without a newline
                lines.append(line)
                lines.append("\\ No newline at end of file")
        # difflib puts a trailing space-free '--- a/x' / '+++ b/x' pair; git wants exactly that.
        chunks.append("\n".join(text + lines) + "\n")
    return "".join(chunks)


def _lines(text: str) -> list[str]:
    """Lines as git sees them: split on \\n only (str.splitlines also splits on \\r, \\f, ...), ends kept."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def _text(data: bytes | None) -> str | None:
    if data is None:
        return ""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
