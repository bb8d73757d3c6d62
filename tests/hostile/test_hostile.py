"""Hostile programs (tests/hostile/programs) against the process backend and the Docker
pool. Each must be contained, leave the host as it was, and the result must say why
the run stopped. Targets are only what the test itself opens on loopback or under its
own temp dir; nothing else is ever addressed."""
from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from pathlib import Path

import pytest

from budgetflow.sandbox import Limits

from tests.sandbox.backends import sandbox_uids_alive

PROGRAMS = sorted((Path(__file__).parent / "programs").glob("*.*"))
MiB = 1 << 20
LIMITS = Limits(timeout_s=3, cpu_s=2, memory_bytes=64 * MiB, max_processes=16, file_size_bytes=2 * MiB,
                disk_bytes=4 * MiB, output_bytes=64 * 1024)
BACKENDS = ["process", "docker-pool"]


def header(path: Path) -> tuple[str, dict]:
    text = path.read_text()
    m = re.search(r"^# expect: (\{.*\})$", text, re.M)
    assert m, f"{path.name} lacks an '# expect:' line"
    return text, json.loads(m.group(1))


class Host:
    """Things on the host the programs try to reach, and checks that they were not reached."""

    def __init__(self, tmp: Path) -> None:
        self.secret = f"BF-SECRET-{uuid.uuid4().hex}"
        self.tcp = self._listen(socket.AF_INET, "127.0.0.1")
        try:
            self.tcp6 = self._listen(socket.AF_INET6, "::1")
        except OSError:  # no IPv6 loopback here: any free port number keeps the program valid
            self.tcp6 = None
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.setblocking(False)
        self.abstract = f"budgetflow-test-{uuid.uuid4().hex}"
        self.uabs = socket.socket(socket.AF_UNIX)
        self.uabs.bind("\0" + self.abstract)
        self.uabs.listen(4)
        self.uabs.setblocking(False)
        self.unix_path = str(tmp / "host.sock")
        self.upath = socket.socket(socket.AF_UNIX)
        self.upath.bind(self.unix_path)
        self.upath.listen(4)
        self.upath.setblocking(False)
        self.secret_path = tmp / "secret.txt"
        self.secret_path.write_text(self.secret)
        self.secret_path.chmod(0o644)
        tmp.chmod(0o755)
        self.marker = tmp / "marker-written-by-sandbox"

    @staticmethod
    def _listen(family: int, addr: str) -> socket.socket:
        s = socket.socket(family)
        s.bind((addr, 0))
        s.listen(8)
        s.setblocking(False)
        return s

    def substitute(self, text: str) -> str:
        subs = {"PORT": self.tcp.getsockname()[1], "PORT6": self.tcp6.getsockname()[1] if self.tcp6 else 9,
                "UDPPORT": self.udp.getsockname()[1], "SECRET_REV": self.secret[::-1], "SECRET": self.secret,
                "SECRET_PATH": self.secret_path,
                "MARKER_PATH": self.marker, "HOST_PID": os.getpid(), "ABSTRACT": self.abstract,
                "UNIX_PATH": self.unix_path}
        for k, v in subs.items():
            text = text.replace(f"@@{k}@@", str(v))
        return text

    def assert_untouched(self) -> None:
        for s in [self.tcp, self.tcp6, self.uabs, self.upath]:
            if s is not None:
                with pytest.raises(BlockingIOError):
                    s.accept()
        with pytest.raises(BlockingIOError):
            self.udp.recv(100)
        assert not self.marker.exists(), "a sandboxed program wrote on the host"
        assert self.secret_path.read_text() == self.secret

    def close(self) -> None:
        for s in [self.tcp, self.tcp6, self.udp, self.uabs, self.upath]:
            if s is not None:
                s.close()


@pytest.fixture
def host(tmp_path):
    h = Host(tmp_path)
    yield h
    h.close()


def test_there_are_enough_hostile_programs():
    assert len(PROGRAMS) >= 40


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_hostile_program_is_contained(program: Path, kind: str, backends, host: Host, monkeypatch):
    """``"twice": true`` programs attack the *next* run: run A, then run B on the same warm worker (the pools are
    LIFO, so B gets A's worker unless the backend retired it), and both must meet the expectations."""
    monkeypatch.setenv("BUDGETFLOW_TEST_SECRET", host.secret)  # must not reach the sandbox
    box = backends.get(kind)
    text, expect = header(program)
    source = host.substitute(text)
    limits = LIMITS.model_copy(update=expect.get("limits", {}))
    for _ in range(2 if expect.get("twice") else 1):
        _run_contained(box, kind, source, expect, limits, host)


def _run_contained(box, kind: str, source: str, expect: dict, limits: Limits, host: Host) -> None:
    t0 = time.monotonic()
    if expect.get("shell"):
        r = box.run(["sh", "prog.sh"], files={"prog.sh": source}, limits=limits)
    else:
        r = box.run_python(source, limits=limits)
    elapsed = time.monotonic() - t0
    out = r.stdout + r.stderr
    # contained: nothing escaped, no secret, within the wall clock (+ start-up slack)
    assert "ESCAPED" not in r.stdout, out[-2000:]
    assert host.secret not in out, "a secret reached the sandbox"
    assert elapsed < limits.timeout_s + 5, elapsed
    for s in expect.get("stdout_has", []):
        assert s in r.stdout, out[-2000:]
    for s in expect.get("stdout_lacks", []):
        assert s not in out, out[-2000:]
    # the result says why it stopped
    if "killed_by" in expect:
        assert r.killed_by in expect["killed_by"], (r.killed_by, r.limits_hit, r.exit_code, out[-1500:])
    if expect.get("ok"):
        assert r.ok, (r.exit_code, r.killed_by, out[-1500:])
    if "cpu_s_min" in expect:  # the CPU of the whole run, orphans included
        assert r.cpu_s >= expect["cpu_s_min"], (r.cpu_s, r.killed_by)
    assert len(r.stdout.encode()) + len(r.stderr.encode()) <= limits.output_bytes
    # the host is as it was
    host.assert_untouched()
    if kind.startswith("process"):
        zpid = box._zygote.pid
        deadline = time.monotonic() + 2
        while sandbox_uids_alive(zpid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sandbox_uids_alive(zpid) == [], "a sandboxed process outlived its run"


def test_runs_cannot_see_each_other(backends, host: Host):
    """A run holding a secret in its work dir, /tmp and /dev/shm while another run searches."""
    import threading

    box = backends.get("process")
    writer_src = host.substitute(
        "import time\nfor p in ('mine.txt', '/tmp/mine2.txt', '/dev/shm/mine3'):\n"
        "    open(p, 'w').write('@@SECRET@@')\nprint('written', flush=True)\ntime.sleep(2)")
    reader_src = host.substitute((Path(__file__).parent / "programs" / "cross_run_reader.py").read_text())
    done: list = []
    t = threading.Thread(target=lambda: done.append(box.run_python(writer_src, limits=LIMITS)))
    t.start()
    time.sleep(0.5)
    r = box.run_python(reader_src, limits=LIMITS)
    t.join()
    assert done and done[0].stdout == "written\n"
    assert "searched" in r.stdout and "ESCAPED" not in r.stdout


def test_killed_parent_leaves_nothing(tmp_path):
    """SIGKILL the client mid-run: the zygote, runner and program all go."""
    import subprocess
    import sys

    script = tmp_path / "client.py"
    script.write_text(
        "from budgetflow.sandbox import ProcessSandbox\nfrom budgetflow.sandbox import Limits\n"
        "import sys\nbox = ProcessSandbox()\nbox.start()\nprint(box._zygote.pid, flush=True)\n"
        "box.run_python('import os, time\\nos.fork()\\ntime.sleep(60)', limits=Limits(timeout_s=60, cpu_s=60))\n")
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    zpid = int(p.stdout.readline())
    deadline = time.monotonic() + 10
    while not sandbox_uids_alive(zpid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_uids_alive(zpid), "the run never started"
    p.kill()
    p.wait()
    deadline = time.monotonic() + 5
    while sandbox_uids_alive(zpid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_uids_alive(zpid) == []


def test_sequential_runs_on_one_worker_share_nothing(backends, host: Host):
    """Warm workers serve runs one after another: what a run leaves (a daemon, SysV shared
    memory, POSIX shm, files) must be gone for the next one, which runs under the same uid."""
    box = backends.get("process")
    planter = host.substitute(
        "import ctypes, os, time\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "key = libc.shmget(0x4242, 4096, 0o1666)\n"  # IPC_CREAT | 0666
        "addr = libc.shmat(key, None, 0); libc.shmat.restype = ctypes.c_void_p\n"
        "open('/dev/shm/left', 'w').write('@@SECRET@@'); open('left.txt', 'w').write('@@SECRET@@')\n"
        "if os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
        "print(os.getuid(), key)")
    finder = (
        "import os, ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "others = [p for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]\n"
        "print(os.getuid(), others, libc.shmget(0x4242, 0, 0), os.listdir('/dev/shm'), sorted(os.listdir('.')))")
    first = box.run_python(planter, limits=LIMITS)
    second = box.run_python(finder, limits=LIMITS)
    uid1, shm_id = first.stdout.split()
    assert int(shm_id) >= 0, "the planter should have been able to create its SysV segment"
    uid2 = second.stdout.split()[0]
    assert uid1 == uid2, "expected the same warm worker for back-to-back runs"
    assert second.stdout.split(" ", 1)[1] == "[] -1 [] ['main.py']\n", second.stdout + second.stderr
