"""Public data types of the sandbox: what a run may use and what it did."""
from __future__ import annotations

from typing import Literal, Mapping, Protocol, Sequence, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

MiB = 1 << 20

# Why a run stopped (or which limit it ran into).
StopReason = Literal["timeout", "cpu", "memory", "output", "processes", "file_size", "disk", "signal"]


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the program): helper could not start, engine gone, ..."""


class SandboxUnavailable(SandboxError):
    """The requested backend cannot run on this machine; the message says why and what to do."""


class Limits(BaseModel):
    """Resource limits of one run. Defaults suit a unit-test run of model-written code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(10.0, gt=0, description="wall-clock limit")
    cpu_s: float = Field(10.0, gt=0, description="CPU seconds of the whole run: every process and thread it "
                         "starts, reaped or not, counted on its cgroup; the run is stopped when it reaches this")
    memory_bytes: int = Field(512 * MiB, ge=16 * MiB, description="memory of the whole run (its cgroup)")
    max_processes: int = Field(64, ge=1, description="processes + threads of the whole run at once (its cgroup)")
    file_size_bytes: int = Field(16 * MiB, ge=0, description="largest file the program may write")
    disk_bytes: int = Field(64 * MiB, ge=MiB, description="size of the writable work dir (tmpfs)")
    open_files: int = Field(256, ge=16, description="open file descriptors")
    output_bytes: int = Field(1 * MiB, ge=1, description="stdout + stderr kept; more stops the run")
    network: bool = Field(False, description="share the host network (off: private, loopback only)")


class ExecResult(BaseModel):
    """Outcome of one run. ``killed_by`` says which limit stopped it (None: it ended on its own)."""

    exit_code: int = Field(description="exit status; -N when killed by signal N")
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    duration_s: float = 0.0
    killed_by: StopReason | None = None
    limits_hit: list[StopReason] = Field(default_factory=list, description="every limit the run ran into")
    signal: int | None = None
    cpu_s: float = Field(0.0, description="CPU-seconds of the whole run (every process and thread it started, "
                         "reaped or not) as its cgroup counted them, on every way a run ends; never clamped, "
                         "and at most the backend's max_cpu_seconds(limits)")
    peak_memory_bytes: int | None = Field(None, description="most memory the run's cgroup held at once")
    peak_processes: int | None = Field(None, description="most processes + threads of the run alive at once "
                                       "(its pids cgroup); None where the backend cannot count them")
    output_truncated: bool = False
    backend: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.killed_by is None


Files = Mapping[str, "str | bytes"]


@runtime_checkable
class Sandbox(Protocol):
    """Runs untrusted code in isolation. Implementations are safe to call from many threads. Register one with
    ``@sandbox_backend(name, priority=...)``."""

    name: str

    def run(self, argv: Sequence[str], *, files: Files | None = None, limits: Limits = Limits(),
            stdin: str | bytes | None = None) -> ExecResult:
        """Run ``argv`` in a fresh work dir holding ``files``. ``argv[0] == "{python}"`` means this backend's
        own Python interpreter (callers write it instead of a path, whatever the backend)."""
        ...

    def run_python(self, source: str, *, files: Files | None = None, limits: Limits = Limits()) -> ExecResult: ...

    def max_cpu_seconds(self, limits: Limits) -> float:
        """A provable upper bound of ``ExecResult.cpu_s`` for any run under ``limits``: the backend enforces
        it (stops the run's whole process tree), so a caller may reserve it before the run."""
        ...

    def close(self) -> None: ...
