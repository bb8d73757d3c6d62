"""``ExecResult.cpu_s`` is the CPU of the whole run and never exceeds ``max_cpu_seconds(limits)``,
on every way a run ends. Hammered with threads and processes burning every CPU, forks that
escape their parent, and the wall clock, memory and output limits; checked against what the
burners themselves report burning (each prints its own process CPU every 20 ms)."""
from __future__ import annotations

import re

import pytest

from budgetflow.sandbox import Limits

MiB = 1 << 20
BURN = '''
import hashlib, os, sys, threading, time
def report():
    os.write(1, f"cpu {os.getpid()} {time.process_time():.4f}\\n".encode())
def burn(seconds=1e9, threads=1):
    """Burn CPU in `threads` threads (sha256 drops the GIL) for `seconds` of this process's CPU."""
    buf = b"x" * (1 << 18)
    def spin():
        while time.process_time() < seconds:
            hashlib.sha256(buf).digest()
    ts = [threading.Thread(target=spin, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    while any(t.is_alive() for t in ts):
        report()
        time.sleep(0.02)
    report()
def fork(fn, escape=False):
    if os.fork() == 0:
        if not escape or os.fork() == 0:  # escape: a grandchild, orphaned at once
            fn()
        os._exit(0)
'''
CASES = {
    # threads of one process on every CPU, stopped at the CPU limit
    "threads": (BURN + "burn(threads=8)", dict(cpu_s=1.0, timeout_s=8), "cpu"),
    # many processes, stopped at the CPU limit
    "processes": (BURN + "for _ in range(8):\n    fork(burn)\ntime.sleep(30)", dict(cpu_s=1.0, timeout_s=8), "cpu"),
    # orphans that escaped their parent (never reaped by the program), stopped at the CPU limit
    "escaped": (BURN + "for _ in range(6):\n    fork(burn, escape=True)\ntime.sleep(30)",
                dict(cpu_s=1.0, timeout_s=8), "cpu"),
    # the wall clock stops burners on every CPU well before their CPU limit
    "timeout": (BURN + "for _ in range(4):\n    fork(burn)\nburn(threads=2)", dict(cpu_s=60, timeout_s=1.0),
                "timeout"),
    # every burner finishes: a normal exit, its children's CPU included
    "exit": (BURN + "for _ in range(4):\n    fork(lambda: burn(0.2))\nwhile True:\n    try:\n"
             "        os.wait()\n    except ChildProcessError:\n        break", dict(cpu_s=10, timeout_s=8), None),
    # the memory limit ends the run while children burn
    "memory": (BURN + "for _ in range(3):\n    fork(burn)\ntime.sleep(0.3)\nx = []\nwhile True:\n"
               "    x.append(bytearray(1 << 20))", dict(cpu_s=30, timeout_s=8, memory_bytes=96 * MiB), "memory"),
}


def _reported(stdout: str) -> tuple[float, int]:
    """Sum over the burners of the last CPU figure each reported, and how many reported."""
    last: dict[str, float] = {}
    for pid, cpu in re.findall(r"^cpu (\d+) ([\d.]+)$", stdout, re.M):
        last[pid] = max(last.get(pid, 0.0), float(cpu))
    return sum(last.values()), len(last)


@pytest.mark.parametrize("case", list(CASES))
def test_cpu_of_the_whole_run_is_measured_and_bounded(box, case):
    source, lim, stopped_by = CASES[case]
    limits = Limits(max_processes=32, output_bytes=1 << 20, **{"memory_bytes": 256 * MiB, **lim})
    r = box.run_python(source, limits=limits)
    bound = box.max_cpu_seconds(limits)
    burnt, burners = _reported(r.stdout)
    assert r.killed_by == stopped_by, (r.killed_by, r.limits_hit, r.stderr[-800:])
    assert r.cpu_s <= bound, (r.cpu_s, bound)
    # at least what the burners saw themselves burn; at most that plus each one's last 20 ms and its exit
    assert burners >= 1
    assert burnt - 0.02 <= r.cpu_s <= burnt + 0.15 + 0.05 * burners, (r.cpu_s, burnt, burners)
    if stopped_by == "cpu":  # stopped at the limit, not at a per-process rlimit or the wall clock
        assert limits.cpu_s <= r.cpu_s, r.cpu_s


def test_output_kill_measures_the_burners_too(box):
    # the flood starts once each burner has burnt 0.1 s (it says so on a pipe), and they keep burning
    src = BURN + ("r, w = os.pipe()\nfor _ in range(3):\n    fork(lambda: (burn(0.1), os.write(w, b'.'), burn()))\n"
                  "got = b''\nwhile len(got) < 3:\n    got += os.read(r, 3)\nwhile True:\n    print('y' * 999)")
    limits = Limits(cpu_s=30, timeout_s=8, output_bytes=64 * 1024, max_processes=32)
    r = box.run_python(src, limits=limits)
    bound = box.max_cpu_seconds(limits)
    assert r.killed_by == "output"
    assert 0.3 <= r.cpu_s <= bound, (r.cpu_s, bound)


def test_bound_is_tight_enough_to_reserve():
    """The bound follows the limits: the CPU limit, or the wall clock on every CPU, plus small slack."""
    from budgetflow.sandbox import ProcessSandbox

    box = ProcessSandbox()
    try:
        cpus = box.cpu.machine_cpus
        assert box.max_cpu_seconds(Limits(cpu_s=10, timeout_s=60)) < 10.5
        assert box.max_cpu_seconds(Limits(cpu_s=60, timeout_s=1)) < cpus * 1.1 + 0.3
        quota = ProcessSandbox(cpus=0.5)
        assert quota.max_cpu_seconds(Limits(cpu_s=60, timeout_s=10)) < 0.5 * 10.3 + cpus * 0.01 + 0.3
    finally:
        box.close()


def test_a_cpu_quota_binds_the_run_and_its_bound():
    """With ``cpus=0.5`` the run gets half a CPU however many threads burn, and the bound says so."""
    from budgetflow.sandbox import ProcessSandbox

    with ProcessSandbox(cpus=0.5) as box:
        limits = Limits(cpu_s=60, timeout_s=1.0)
        r = box.run_python(BURN + "burn(threads=4)", limits=limits)
        assert r.killed_by == "timeout"
        assert r.cpu_s <= box.max_cpu_seconds(limits) < 1.0, (r.cpu_s, box.max_cpu_seconds(limits))
        assert r.cpu_s <= 0.5 * (1.0 + 0.1) + 0.05  # a period's quota of slack at most
