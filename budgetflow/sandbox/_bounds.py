"""``Sandbox.max_cpu_seconds``: a provable upper bound of ``ExecResult.cpu_s`` for any run under
given limits, from how the backend enforces them (the ledger reserves it before a run).

The run's CPU is what its cgroup counted, every task of it, reaped or not. A watcher reads that
counter at least every ``poll_s`` and stops the run (every task of the group) when it reaches
``cpu_s`` or when the wall clock reaches ``timeout_s``; stopping takes at most ``latency_s`` from
the moment the watcher was due (its wake-up lateness + freezing/killing the group). Then:

  * in any wall-clock window of ``w`` seconds the run can use at most ``window(w)`` CPU-seconds:
    ``machine_cpus * w`` (there are no more CPUs), and with a CFS quota of ``cpus`` per 100 ms
    period, ``cpus * (w + period) + machine_cpus * tick_s`` (a period's quota can be front-loaded;
    each CPU may overrun by one tick before it is throttled);
  * by CPU: the last reading below ``cpu_s`` lags the truth by at most ``machine_cpus * tick_s``,
    and the run is stopped within ``poll_s + latency_s`` of it:
    ``cpu_s + machine_cpus * tick_s + window(poll_s + latency_s)``;
  * by wall clock: every task of the run exists between the watcher's start mark (taken before the
    program is forked) and ``latency_s`` past its deadline: ``window(timeout_s + latency_s)``;
  * killed tasks still spend CPU exiting (freeing their memory, one teardown per task):
    ``exit_slack`` (measured here: 27 ms for 512 MiB, 20 ms for 60 tasks; bounded with 3-5x margin).

The bound is the smaller of the two plus the exit slack. Nothing clamps the measured figure.

``latency_s`` is the one figure the kernel does not enforce: it rests on the watcher outranking every
task of the run (process backend: nice -20, SCHED_FIFO once a run passes 50 ms, programs unprivileged
with RLIMIT_NICE and RLIMIT_RTPRIO 0; Docker: the program at nice 10 below the runner in the
container's group) and on a cgroup stop taking milliseconds; each backend states it with a wide
margin, and tests/sandbox/test_cpu_bound.py hammers it.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._models import Limits

PERIOD_S = 0.1  # the CFS period the backends set with a quota
GiB = 1 << 30


@dataclass(frozen=True)
class CpuEnforcement:
    machine_cpus: int  # CPUs the run's tasks could ever be scheduled on
    cpus: float | None  # CFS quota in CPUs; None: none set (the machine's CPUs bound the rate)
    poll_s: float  # the watcher reads the run's CPU at least this often
    latency_s: float  # watcher lateness + stopping every task of the run
    tick_s: float = 0.01  # scheduler tick (HZ >= 100): accounting lag and quota overrun per CPU

    def window(self, w: float) -> float:
        """Most CPU-seconds the run can use in ``w`` seconds of wall clock."""
        physical = self.machine_cpus * w
        if self.cpus is None or self.cpus >= self.machine_cpus:
            return physical
        return min(physical, self.cpus * (w + PERIOD_S) + self.machine_cpus * self.tick_s)

    @staticmethod
    def exit_slack(limits: Limits) -> float:
        return 0.05 + 0.1 * limits.memory_bytes / GiB + 0.001 * limits.max_processes

    def max_cpu_seconds(self, limits: Limits) -> float:
        by_cpu = limits.cpu_s + self.machine_cpus * self.tick_s + self.window(self.poll_s + self.latency_s)
        by_wall = self.window(limits.timeout_s + self.latency_s)
        return min(by_cpu, by_wall) + self.exit_slack(limits)
