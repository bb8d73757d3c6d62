"""One sandbox run paid for through the ledger: reserve the worst case first, commit the CPU time measured."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from ..budget import Account
from ..sandbox import ExecResult, Limits


def worst_case_cpu(limits: Limits, usd_per_cpu_second: float = 0.0) -> dict[str, float]:
    """What one run can cost at most: RLIMIT_CPU counts whole seconds, and the kill lands up to a second late."""
    cpu = float(math.ceil(limits.cpu_s) + 1)
    amounts: dict[str, float] = {"cpu_seconds": cpu, "calls": 1}
    if usd_per_cpu_second:
        amounts["usd"] = cpu * usd_per_cpu_second
    return amounts


def metered_run(account: Account, limits: Limits, usd_per_cpu_second: float, run: Callable[[], ExecResult], *,
                worst_if_killed: bool = False) -> tuple[ExecResult, float]:
    """Run `run()` under a reservation of its worst case on `account` (BudgetExceeded before anything runs) and
    commit the CPU-seconds it used; returns the result and the seconds charged. An unknown outcome (the sandbox
    raised) is charged as reserved; with `worst_if_killed`, so is a run the sandbox had to kill (processes it never
    reaped are missing from the CPU time it measured)."""
    worst = worst_case_cpu(limits, usd_per_cpu_second)
    reservation = account.reserve(**worst)
    try:
        result = run()
    except BaseException:
        reservation.commit(**worst)
        raise
    if worst_if_killed and result.killed_by is not None:
        cpu = worst["cpu_seconds"]
    else:
        cpu = min(max(result.cpu_s, 0.001), worst["cpu_seconds"])
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
