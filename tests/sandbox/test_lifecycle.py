"""What happens around runs: labelled Docker containers of a dead parent are swept, the
CLI reports backends, pool workers are reused and replaced."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from typer.testing import CliRunner

from budgetflow.sandbox import DockerSandbox, Limits
from budgetflow.sandbox._docker import LABEL, OWNER_LABEL

from .backends import REPO


def _docker(backends) -> DockerSandbox:
    return backends.get("docker").box


def test_sweep_removes_containers_of_dead_owners(backends):
    box = _docker(backends)
    dead_owner = f"{__import__('socket').gethostname()}:999999999:1"
    c = box.client.containers.run(box.image, ["sleep", "300"], detach=True, network_mode="none",
                                  labels={LABEL: "1", OWNER_LABEL: dead_owner})
    try:
        fresh = DockerSandbox()  # sweeps on start
        try:
            ids = {x.id for x in fresh.client.containers.list(all=True, sparse=True, filters={"label": LABEL})}
            assert c.id not in ids and fresh.swept >= 1
        finally:
            fresh.close()
    finally:
        try:
            c.remove(force=True)
        except Exception:
            pass


def test_killed_parent_leaves_no_container_behind(backends, tmp_path):
    """SIGKILL a client mid-run; its container stops at its own wall clock at the latest,
    and the next DockerSandbox removes it right away."""
    box = _docker(backends)
    script = tmp_path / "client.py"
    script.write_text(
        "from budgetflow.sandbox import DockerSandbox\nfrom budgetflow.sandbox import Limits\n"
        "box = DockerSandbox()\nprint(box.owner, flush=True)\n"
        "box.run_python('import time\\ntime.sleep(120)', limits=Limits(timeout_s=120, cpu_s=10), fresh=True)\n")
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    owner = p.stdout.readline().strip()

    def mine() -> list:
        return box.client.containers.list(all=True, sparse=True, filters={"label": f"{OWNER_LABEL}={owner}"})

    deadline = time.monotonic() + 30
    while not mine() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert mine(), "the client never started its container"
    p.kill()
    p.wait()
    DockerSandbox().close()  # a new sandbox sweeps what the dead one left
    assert mine() == []


def _check(*args: str):
    from budgetflow.cli import app  # the main CLI: `budgetflow sandbox check`

    return CliRunner().invoke(app, ["sandbox", "check", *args])


def test_cli_check_reports_every_backend(backends):
    _docker(backends)  # engine started (the fixture may have run setup_docker.sh)
    result = _check("--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["process"] == {"ok": True, "reason": None}
    assert status["docker"] == {"ok": True, "reason": None}


def test_cli_check_explains_a_missing_engine(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/budgetflow-test.sock")
    result = _check("--json")
    status = json.loads(result.output)
    assert status["docker"]["ok"] is False
    assert "setup_docker.sh" in status["docker"]["reason"]


def test_warm_workers_are_reused_and_replaced(backends):
    box = backends.get("process")
    uid = lambda: box.run_python("import os; print(os.getuid())").stdout  # noqa: E731
    first = uid()
    assert uid() == first  # same idle worker, back to back
    # a run that breaks its worker (output cap, then the worker keeps serving) ...
    r = box.run_python("while True: print('x' * 1000)", limits=Limits(output_bytes=10_000))
    assert r.killed_by == "output"
    assert uid() == first
    # ... and one whose worker is gone: the next run gets a new one
    for sock in box._idle[False]:
        sock.close()
    box._idle[False].clear()
    assert box.run_python("print('fine')").stdout == "fine\n"


def test_killed_parent_pool_container_goes_by_itself(backends, tmp_path):
    """A pool container's runner reads the parent's attach stream: when the parent dies the
    stream closes, the runner exits and Docker removes the container, no sweep needed."""
    box = _docker(backends)
    script = tmp_path / "client.py"
    script.write_text(
        "from budgetflow.sandbox import DockerSandbox\nimport time\n"
        "box = DockerSandbox()\nbox.run_python('print(1)')\nprint(box.owner, flush=True)\ntime.sleep(120)\n")
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    owner = p.stdout.readline().strip()

    def mine() -> list:
        return box.client.containers.list(all=True, sparse=True, filters={"label": f"{OWNER_LABEL}={owner}"})

    assert mine(), "the idle pool container should exist while its parent lives"
    p.kill()
    p.wait()
    deadline = time.monotonic() + 15
    while mine() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert mine() == []


def test_sweep_leaves_groups_of_other_pid_namespaces_alone():
    # a sandbox started inside another pid namespace (the Ray test makes one) must not take this namespace's
    # live owners for dead: their pids mean nothing there
    from budgetflow.sandbox import _cgroups

    cg = _cgroups.Cgroups.detect()
    if cg is None:
        pytest.skip("no writable cgroups here (not root)")
    dead = 4_000_000  # above pid_max: no such process
    ours, foreign = f"bf-{cg.namespace}-{dead}-0", f"bf-1-{dead}-0"
    for parent in set(cg.dirs.values()):
        for name in (ours, foreign):
            os.makedirs(os.path.join(parent, name), exist_ok=True)
    try:
        cg.sweep()
        for parent in set(cg.dirs.values()):
            assert not os.path.exists(os.path.join(parent, ours))  # our namespace, owner dead: swept
            assert os.path.isdir(os.path.join(parent, foreign))  # another namespace: left alone
    finally:
        for parent in set(cg.dirs.values()):
            for name in (ours, foreign):
                try:
                    os.rmdir(os.path.join(parent, name))
                except OSError:
                    pass


def test_process_worker_in_doubt_is_replaced(backends):
    """A run that leaves a socket in its worker's network namespace (a TIME_WAIT entry) makes the
    worker quit after answering; the next run gets a fresh one, and answers right."""
    box = backends.get("process")
    uid = lambda: box.run_python("import os; print(os.getuid())").stdout  # noqa: E731
    first = uid()
    assert uid() == first
    worker = box._idle[False][-1]  # the connection of the worker both runs used (the pool is a stack)
    tw = ("import socket\ns = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
          "c = socket.create_connection(s.getsockname()); a, _ = s.accept(); c.close(); a.close(); print('done')")
    r = box.run_python(tw)
    assert r.ok and r.stdout == "done\n"
    # it said it quits, so it never serves again (its uid may: a new worker can take the freed slot)
    assert worker.fileno() == -1 and worker not in box._idle[False]
    assert uid().strip().isdigit()


def test_pool_container_with_leftovers_is_retired(backends):
    """A pool container whose run left an IPC object behind is not reused; a clean one is."""
    box = backends.get("docker-pool")
    host = lambda: box.run_python("import socket; print(socket.gethostname())").stdout  # noqa: E731
    first = host()
    assert host() == first  # a clean run keeps its container
    r = box.run_python("import ctypes\nprint(ctypes.CDLL(None).msgget(0x7E57, 0o1600) >= 0)")
    assert r.stdout == "True\n"
    assert host() != first
