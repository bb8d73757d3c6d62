"""One sandbox run paid for through the ledger: reserve the sandbox's bound on the run's CPU first, commit the CPU
time it measured for the whole run."""

from __future__ import annotations

import json
from collections.abc import Callable

from ..budget import Account
from ..sandbox import ExecResult, Limits, Sandbox


def worst_case_cpu(sandbox: Sandbox, limits: Limits, usd_per_cpu_second: float = 0.0) -> dict[str, float]:
    """What one run can cost at most: the sandbox's provable bound on the CPU-seconds of a whole run (every process
    it starts, reaped or not) under `limits`."""
    cpu = float(sandbox.max_cpu_seconds(limits))
    amounts: dict[str, float] = {"cpu_seconds": cpu, "calls": 1}
    if usd_per_cpu_second:
        amounts["usd"] = cpu * usd_per_cpu_second
    return amounts


def metered_run(account: Account, sandbox: Sandbox, limits: Limits, usd_per_cpu_second: float,
                run: Callable[[], ExecResult]) -> tuple[ExecResult, float]:
    """Run `run()` (a run of `sandbox` under `limits`) under a reservation of its worst case on `account`
    (BudgetExceeded before anything runs) and commit the CPU-seconds the sandbox measured for the whole run — on
    every path, a timeout or a kill included, never clamped. Returns the result and the seconds charged. An
    unknown outcome (the sandbox itself raised) is charged as reserved."""
    worst = worst_case_cpu(sandbox, limits, usd_per_cpu_second)
    reservation = account.reserve(**worst)
    try:
        result = run()
    except BaseException:
        reservation.commit(**worst)
        raise
    cpu = max(float(result.cpu_s), 0.0)
    actual: dict[str, float] = {"cpu_seconds": cpu, "calls": 1}
    if usd_per_cpu_second:
        actual["usd"] = cpu * usd_per_cpu_second
    reservation.commit(**actual)
    return result, cpu


def marked_json(stdout: str, mark: str):
    """The JSON value a harness printed on the last line starting with its per-run `mark`; None if there is none
    or it does not parse (the run ended before reporting)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(mark):
            try:
                return json.loads(line[len(mark):])
            except ValueError:
                return None
    return None
