"""Unit-test verifier: run a candidate program and a list of assert-style tests in the sandbox, under a reservation
of CPU-seconds on the caller's account, and report which tests passed.

Each test runs in the same process after the candidate is defined, with its own alarm, so one hanging test does not
hide the results of the others. Results come back on stdout behind a per-run random marker.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence

from pydantic import BaseModel

from ..budget import SANDBOX_CPU, Account, PriceBook
from ..sandbox import ExecResult, Limits, Sandbox, get_sandbox
from ..tasks import CodeTask
from ._code import program_for
from ._metered import marked_json, metered_run, worst_case_cpu
from ._protocol import Verdict, verifier

_HARNESS = r'''
import json as _bf_json, signal as _bf_signal, sys as _bf_sys

class _BfTimeout(BaseException):
    pass

def _bf_alarm(signum, frame):
    raise _BfTimeout()

_bf_signal.signal(_bf_signal.SIGALRM, _bf_alarm)
_bf_results = []
try:
    _bf_src = open("candidate.py").read()
    exec(compile(_bf_src, "candidate.py", "exec"), globals())
    _bf_loaded = None
except BaseException as _bf_err:
    _bf_loaded = type(_bf_err).__name__ + ": " + str(_bf_err)[:200]
for _bf_test in _BF_TESTS:
    if _bf_loaded is not None:
        _bf_results.append([False, "candidate did not load: " + _bf_loaded, None])
        continue
    _bf_signal.setitimer(_bf_signal.ITIMER_REAL, _BF_PER_TEST)
    try:
        try:
            _bf_code, _bf_expr = compile(_bf_test, "test", "eval"), True
        except SyntaxError:
            _bf_code, _bf_expr = compile(_bf_test, "test", "exec"), False
        _bf_value = eval(_bf_code, dict(globals()))  # runs exec-mode code too (and returns None)
        _bf_results.append([True, "", None if _bf_value is None and not _bf_expr else repr(_bf_value)[:300]])
    except _BfTimeout:
        _bf_results.append([False, "timeout", None])
    except BaseException as _bf_err:
        _bf_results.append([False, (type(_bf_err).__name__ + ": " + str(_bf_err))[:200], None])
    finally:
        _bf_signal.setitimer(_bf_signal.ITIMER_REAL, 0)
_bf_sys.stdout.flush()
_bf_sys.stdout.write("\n" + _BF_MARK + _bf_json.dumps({"loaded": _bf_loaded, "results": _bf_results}) + "\n")
_bf_sys.stdout.flush()
'''


class TestOutcome(BaseModel):
    __test__ = False  # not a pytest class
    test: str
    passed: bool  # for an expression: it evaluated without raising
    error: str = ""
    value: str | None = None  # repr of an expression's value (tests that are expressions, e.g. `f(3)`)


class TestReport(BaseModel):
    __test__ = False  # not a pytest class
    """Which tests a candidate passed. `loaded` is False when the candidate itself failed to run."""

    outcomes: list[TestOutcome]
    loaded: bool = True
    load_error: str = ""
    cpu_seconds: float = 0.0
    killed_by: str | None = None

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def total(self) -> int:
        return len(self.outcomes)

    @property
    def all_passed(self) -> bool:
        return self.loaded and all(o.passed for o in self.outcomes)

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total else (1.0 if self.loaded else 0.0)

    @property
    def signature(self) -> tuple[bool, ...]:
        return tuple(o.passed for o in self.outcomes)

    def verdict(self) -> Verdict:
        """This report as the verifiers' one verdict type."""
        first_error = self.load_error or next((o.error for o in self.outcomes if not o.passed), "")
        return Verdict(passed=self.all_passed, score=self.fraction if self.loaded else 0.0, loaded=self.loaded,
                       checks=self.total, passed_checks=self.passed if self.loaded else 0,
                       signature=[self.loaded and o.passed for o in self.outcomes],
                       detail=first_error.strip().splitlines()[-1][:200] if first_error.strip() else "",
                       cpu_seconds=self.cpu_seconds, killed_by=self.killed_by)


@verifier("unit-tests", kinds=("code",))
class UnitTestVerifier:
    """Runs candidates against tests in a sandbox. Every run reserves its worst-case CPU time (and its price, if
    priced: `prices` with a SANDBOX_CPU entry) on the given account first, then commits the CPU time the sandbox
    measured.

    As a `Verifier`: `verify(task, completion)` runs the task's visible tests on the completed function."""

    name = "unit-tests"

    def __init__(self, sandbox: Sandbox | None = None, *, limits: Limits | None = None,
                 per_test_timeout_s: float = 2.0, usd_per_cpu_second: float = 0.0, prices: PriceBook | None = None):
        self.sandbox = sandbox or get_sandbox("auto")
        self.limits = limits or Limits(timeout_s=10.0, cpu_s=5.0, memory_bytes=256 * (1 << 20))
        self.per_test_timeout_s = per_test_timeout_s
        # what a CPU-second of the sandbox costs: the PriceBook's SANDBOX_CPU entry, or the rate given
        self.usd_per_cpu_second = prices.per_second(SANDBOX_CPU) if prices is not None else usd_per_cpu_second

    def worst_case(self) -> dict[str, float]:
        """What one run can cost at most (see metered.worst_case_cpu)."""
        return worst_case_cpu(self.sandbox, self.limits, self.usd_per_cpu_second)

    def verify(self, task: CodeTask, candidate: str, *, account: Account) -> Verdict:
        """The completion `candidate` of `task` (its public view) against the task's visible tests."""
        return self.run(program_for(task, candidate), task.visible_tests, account=account).verdict()

    def run(self, program: str, tests: Sequence[str], *, account: Account) -> TestReport:
        """Run `program`, then each test (a statement such as an assert, or an expression whose value is recorded);
        raises BudgetExceeded, before running anything, if the account cannot afford the run."""
        mark = f"__bf_results_{secrets.token_hex(8)}__ "
        harness = (f"_BF_TESTS = {json.dumps(list(tests))}\n_BF_PER_TEST = {self.per_test_timeout_s!r}\n"
                   f"_BF_MARK = {mark!r}\n" + _HARNESS)
        result, cpu = metered_run(account, self.sandbox, self.limits, self.usd_per_cpu_second,
                                  lambda: self.sandbox.run_python(harness, files={"candidate.py": program},
                                                                  limits=self.limits))
        return _parse(result, list(tests), mark, cpu)


def _parse(result: ExecResult, tests: list[str], mark: str, cpu: float) -> TestReport:
    payload = marked_json(result.stdout, mark)
    if not isinstance(payload, dict) or len(payload.get("results") or []) != len(tests):
        why = result.killed_by or f"exit {result.exit_code}"
        err = f"the run ended before reporting ({why}): {result.stderr.strip()[-200:]}"
        return TestReport(outcomes=[TestOutcome(test=t, passed=False, error=err) for t in tests], loaded=False,
                          load_error=err, cpu_seconds=cpu, killed_by=result.killed_by)
    loaded = payload["loaded"] is None
    return TestReport(outcomes=[TestOutcome(test=t, passed=bool(ok), error=err, value=value)
                                for t, (ok, err, value) in zip(tests, payload["results"])],
                      loaded=loaded, load_error=payload["loaded"] or "", cpu_seconds=cpu, killed_by=result.killed_by)
