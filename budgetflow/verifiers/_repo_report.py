"""What one repository test run found (``RepoTestReport``), read from the supervisor's marked output line."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..sandbox import ExecResult
from ..tasks import RepoTask
from ..workspace import nodeid_file
from ._metered import marked_json


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


def missing_files_note(missing: list[str]) -> str:
    return "test files not in the working copy: " + ", ".join(sorted({nodeid_file(m) for m in missing}))


def missing_report(wanted: list[str], missing: list[str]) -> RepoTestReport:
    """The report of a run that had nothing to run: every requested test's file is absent."""
    return RepoTestReport(failed=frozenset(wanted), exit_code=4, errors=missing_files_note(missing),
                          details={m: "test file not found in the working copy" for m in missing})


def parse_report(result: ExecResult, mark: str, wanted: list[str] | None, missing: list[str],
                 cpu: float) -> RepoTestReport:
    """The report from the sandbox's result: the supervisor's payload behind ``mark``, or a failed run when it
    printed none. ``wanted``: the requested node ids (None: the whole suite); ``missing``: those whose file is
    absent."""
    payload = marked_json(result.stdout, mark)
    if not isinstance(payload, dict):
        why = result.killed_by or f"exit {result.exit_code}"
        err = f"the test run ended before reporting ({why}): {result.stderr.strip()[-500:]}"
        return RepoTestReport(failed=frozenset(wanted or ()), errors=err, exit_code=result.exit_code,
                              timed_out=result.timed_out, cpu_s=cpu, output_tail=result.stdout[-4000:],
                              killed_by=result.killed_by, details={t: err for t in wanted or ()})
    outcome, details, durations, problems = _outcomes(payload.get("records", []), wanted is None)
    if wanted is not None:
        wanted_set = set(wanted)
        outcome = {k: v for k, v in outcome.items() if k in wanted_set}
        for t in [t for t in wanted if t not in outcome]:  # requested but never reported
            outcome[t] = "failed"
            details.setdefault(t, "test file not found in the working copy" if t in missing
                               else "did not run: no such test, or the run crashed or was stopped before it")
        if missing:
            problems.append(missing_files_note(missing))
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


def _outcomes(records: list, whole_suite: bool
              ) -> tuple[dict[str, str], dict[str, str], dict[str, float], list[str]]:
    """Fold the plugin's records into (outcome, failure text, call duration) per node id, plus collection problems.
    A failure is never undone by a later record of the same test (a forged "passed" cannot hide it)."""
    outcome: dict[str, str] = {}
    details: dict[str, str] = {}
    durations: dict[str, float] = {}
    problems: list[str] = []
    for rec in records:
        if not isinstance(rec, dict):
            continue
        nid = str(rec.get("id", ""))
        if rec.get("kind") == "collect":
            problems.append(f"collection error in {nid or 'the session'}:\n{_trim(str(rec.get('text', '')), 1500)}")
            if whole_suite and nid:
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
    return outcome, details, durations, problems


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]
