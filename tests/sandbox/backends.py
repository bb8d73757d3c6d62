"""Real sandbox backends for the tests: the process backend (warm and cold) and Docker
(fresh container and warm pool). Docker comes from scripts/setup_docker.sh; when it
cannot run, its tests fail with the reason unless BUDGETFLOW_ALLOW_NO_DOCKER=1."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from budgetflow.sandbox import ExecResult, Limits, SandboxUnavailable

REPO = Path(__file__).resolve().parents[2]
SETUP = REPO / "scripts" / "setup_docker.sh"
ALL_KINDS = ["process", "process-cold", "docker", "docker-pool"]


class DockerVariant:
    """Pins DockerSandbox's fresh/pooled choice so one test body covers both."""

    def __init__(self, box, fresh: bool) -> None:
        self.box, self.fresh = box, fresh
        self.name = "docker" if fresh else "docker-pool"

    def run(self, argv, *, files=None, limits: Limits = Limits(), stdin=None) -> ExecResult:
        return self.box.run(argv, files=files, limits=limits, stdin=stdin, fresh=self.fresh)

    def run_python(self, source, *, files=None, limits: Limits = Limits()) -> ExecResult:
        return self.box.run_python(source, files=files, limits=limits, fresh=self.fresh)

    def max_cpu_seconds(self, limits: Limits) -> float:
        return self.box.max_cpu_seconds(limits)


def start_docker():
    from budgetflow.sandbox import DockerSandbox

    try:
        return DockerSandbox()
    except SandboxUnavailable as first:
        proc = subprocess.run(["bash", str(SETUP), "--env"], capture_output=True, text=True, timeout=900)
        if proc.returncode == 0:
            for line in proc.stdout.splitlines():
                if line.startswith("export DOCKER_HOST="):
                    os.environ["DOCKER_HOST"] = line.split("=", 1)[1]
            try:
                return DockerSandbox()
            except SandboxUnavailable as e:
                reason = str(e)
        else:
            reason = f"{first}; setup_docker.sh failed: {proc.stderr.strip()[-800:]}"
    if os.environ.get("BUDGETFLOW_ALLOW_NO_DOCKER") == "1":
        pytest.skip(f"Docker unavailable (BUDGETFLOW_ALLOW_NO_DOCKER=1): {reason}")
    pytest.fail(f"Docker backend cannot run here: {reason}. "
                "Set BUDGETFLOW_ALLOW_NO_DOCKER=1 to skip the Docker tests deliberately.", pytrace=False)


class Backends:
    """Session-wide lazily started backends."""

    def __init__(self) -> None:
        self._boxes: dict = {}

    def get(self, kind: str):
        if kind not in self._boxes:
            if kind.startswith("process"):
                from budgetflow.sandbox import ProcessSandbox

                self._boxes[kind] = ProcessSandbox(warm=(kind == "process"))
            else:
                if "docker-engine" not in self._boxes:
                    self._boxes["docker-engine"] = start_docker()
                self._boxes[kind] = DockerVariant(self._boxes["docker-engine"], fresh=(kind == "docker"))
        return self._boxes[kind]

    def close(self) -> None:
        for box in self._boxes.values():
            if hasattr(box, "close"):
                box.close()


def sandbox_uids_alive(zygote_pid: int | None = None) -> list[int]:
    """Host processes still running under a process-backend run uid (there must be none).
    With ``zygote_pid``, only that zygote's runs count (other sandboxes may be busy)."""
    from budgetflow.sandbox._protocol import UID_BASE

    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        uid = int(line.split()[1])
                        if UID_BASE <= uid < UID_BASE + (1 << 31) and (
                                zygote_pid is None or (uid - UID_BASE) >> 8 == zygote_pid):
                            found.append(int(pid))
                        break
        except OSError:
            continue
    return found
