"""Turn what a runner observed into ``ExecResult.killed_by`` / ``limits_hit``.

Shared by every backend so "why did it stop" means the same everywhere. Kernel facts
(signals, cgroup counters, our own kill) come first; stderr patterns are a fallback
for limits the kernel reports only as an error code to the program (EFBIG, ENOSPC,
EAGAIN on fork, MemoryError). A program can fake those lines, but only about itself.
"""
from __future__ import annotations

import signal as _signal

from ._models import ExecResult, Limits, StopReason

_ORDER: tuple[StopReason, ...] = ("timeout", "output", "memory", "cpu", "file_size", "disk", "processes", "signal")


def classify(facts: dict, limits: Limits, backend: str) -> ExecResult:
    status = facts.get("status")
    sig: int | None = None
    stopped_by_us = facts.get("timed_out") or facts.get("output_capped") or facts.get("cpu_killed")
    if stopped_by_us or status is None:
        exit_code = -_signal.SIGKILL
        sig = _signal.SIGKILL
    elif "exit_code" in facts:  # backends that already decoded the status
        exit_code = facts["exit_code"]
        sig = -exit_code if exit_code < 0 else None
    elif status & 0x7F:
        sig = status & 0x7F
        exit_code = -sig
    else:
        exit_code = (status >> 8) & 0xFF
    out: bytes = facts.get("stdout", b"")
    err: bytes = facts.get("stderr", b"")
    tail = err[-4096:]
    cpu_s = float(facts.get("cpu_s") or 0.0)
    hit: set[StopReason] = set()
    if facts.get("timed_out"):
        hit.add("timeout")
    if facts.get("output_capped"):
        hit.add("output")
    if facts.get("oom_killed") or b"MemoryError" in tail:
        hit.add("memory")
    if facts.get("cpu_killed") or sig == _signal.SIGXCPU or cpu_s >= limits.cpu_s:  # the run's cgroup reached it
        hit.add("cpu")
    if sig == _signal.SIGXFSZ or b"File too large" in tail:
        hit.add("file_size")
    if facts.get("disk_full") or b"No space left on device" in tail:
        hit.add("disk")
    if facts.get("pids_hit") or (b"Resource temporarily unavailable" in tail and b"fork" in tail.lower()):
        hit.add("processes")
    failed = exit_code != 0 or stopped_by_us
    if sig is not None and not hit:
        hit.add("signal")
    killed_by = next((r for r in _ORDER if r in hit), None) if failed else None
    return ExecResult(
        exit_code=exit_code,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        timed_out=bool(facts.get("timed_out")),
        duration_s=float(facts.get("duration_s") or 0.0),
        killed_by=killed_by,
        limits_hit=[r for r in _ORDER if r in hit],
        signal=sig,
        cpu_s=cpu_s,
        peak_memory_bytes=facts.get("peak_memory_bytes"),
        peak_processes=facts.get("peak_processes"),
        output_truncated=bool(facts.get("output_capped")),
        backend=backend,
    )
