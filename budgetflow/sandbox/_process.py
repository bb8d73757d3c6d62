"""Process backend: Linux namespaces + cgroups + rlimits + seccomp, with a warm pool.

The client side only. The isolation itself happens in ``_helper.py``, a separate,
freshly exec'd interpreter (never a fork of this process, which may hold API keys):
a zygote forks workers, each serving runs one at a time over its own connection. The
client keeps idle worker connections (the warm pool) and hands each run's files to
the run's program directly, so the workers never hold one run's data for the next.

Per run everything the program can write is new: tmpfs ``/tmp`` and ``/dev/shm``, IPC namespace, process tree (all
killed before the next run). Per worker and reused: pid/mount/uts/network namespaces, uid, cgroup; a worker that
finds anything of a run left (a socket in its network namespace, a task that will not die) retires. ``warm=False``
shares nothing.

Needs root (namespaces, a uid per worker, cgroups, mounts; as root NPROC rlimits do not bind, so a pids cgroup
does), Linux >= 5.3 (pidfd), and cgroup v1 memory+pids(+cpuacct, freezer) hierarchies or cgroup v2 with those
controllers delegated to our cgroup. Programs run under ``/usr/bin/python3`` (the pyenv interpreter sits under
/root, mode 0700); ``BUDGETFLOW_SANDBOX_PYTHON`` picks another, bind-mounted when it lives outside /usr. The helper
uses the empty host directory ``/tmp/.budgetflow-sandbox-root`` as a mount point inside its own mount namespace.
"""
from __future__ import annotations

import importlib.util
import json
import os
import posixpath
import socket
import subprocess
import sys
import threading
from typing import Sequence

from . import _linux
from ._backends import sandbox_backend
from ._bounds import CpuEnforcement
from ._classify import classify
from ._environments import ENV_MOUNT, PythonEnv, env_vars
from ._models import ExecResult, Files, Limits, SandboxError, SandboxUnavailable
from ._protocol import recv_msg, send_msg, send_msg_fd

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_helper.py")
_HELPER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
SCRIPT = "main.py"
# The worker reads the run's CPU at least every CPU_POLL_S. No task of the run can delay it (it runs at nice -20,
# and SCHED_FIFO once a run passes 50 ms; programs are unprivileged, nice >= 0), and freezing the run's cgroup
# takes milliseconds: STOP_LATENCY_S, its lateness + the stop, holds with a wide margin.
CPU_POLL_S = 0.01
STOP_LATENCY_S = 0.1


def default_python() -> str:
    """Interpreter used inside the sandbox. It must be readable by an unprivileged uid
    once mounted in the sandbox root; the system one is, and needs no extra bind mount."""
    env = os.environ.get("BUDGETFLOW_SANDBOX_PYTHON")
    if env:
        return env
    if os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3"
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def _pyseccomp_path() -> str:
    spec = importlib.util.find_spec("pyseccomp")
    if spec is None or not spec.origin:
        raise SandboxUnavailable("process backend needs pyseccomp: pip install pyseccomp (and libseccomp2)")
    return spec.origin


def unavailable_reason() -> str | None:
    """Why the process backend cannot run here, or None."""
    if not sys.platform.startswith("linux"):
        return "process backend needs Linux namespaces"
    if os.geteuid() != 0:
        return ("process backend needs root (namespaces, per-run uids, cgroups); "
                "run as root or use the docker backend")
    try:
        _pyseccomp_path()
    except SandboxUnavailable as e:
        return str(e)
    return None


def _normalise_files(files: Files | None) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, data in (files or {}).items():
        norm = posixpath.normpath(name)
        if norm.startswith(("/", "../")) or norm in (".", "..") or "\0" in norm:
            raise ValueError(f"file name {name!r} must be a relative path inside the work dir")
        out[norm] = data.encode() if isinstance(data, str) else bytes(data)
    return out


class _NotStarted(Exception):
    """The worker failed before the program started (safe to retry)."""


@sandbox_backend("process", priority=20)  # preferred: full isolation, and the fastest by far when warm
class ProcessSandbox:
    """``warm=True`` (default): runs go to a pool of pre-started workers, and
    ``run_python`` executes in an already-initialised interpreter forked per run.
    ``warm=False``: every run starts a fresh helper and exec's the program (slower;
    nothing at all is reused between runs). ``cpus``: a CFS quota on each run (None: it
    may use every CPU of the machine). Thread-safe: concurrent callers get separate workers."""

    def __init__(self, *, warm: bool = True, python: str | None = None, start_timeout_s: float = 30.0,
                 cpus: float | None = None, environment: PythonEnv | None = None) -> None:
        reason = unavailable_reason()
        if reason:
            raise SandboxUnavailable(reason)
        self.warm = warm
        self.name = "process" if warm else "process-cold"
        self.python = python or default_python()
        # a Python environment: its venv bind-mounted read-only at ENV_MOUNT, "{python}" its interpreter
        self.environment = environment
        self._envs: dict[str, ProcessSandbox] = {}
        self.start_timeout_s = start_timeout_s
        self.info: dict = {}
        self._pyseccomp = _pyseccomp_path()
        self._lock = threading.Lock()
        self._zygote: subprocess.Popen | None = None
        self._ctrl: socket.socket | None = None
        self._idle: dict[bool, list[socket.socket]] = {True: [], False: []}  # workers by network mode
        self.max_idle = max(4, 2 * (os.cpu_count() or 1))
        machine = os.cpu_count() or 1
        self.cpus = cpus if cpus is not None and cpus < machine else None
        self.cpu = CpuEnforcement(machine, self.cpus, CPU_POLL_S, STOP_LATENCY_S)

    # -- public API -----------------------------------------------------------------

    def run(self, argv: Sequence[str], *, files: Files | None = None, limits: Limits = Limits(),
            stdin: str | bytes | None = None, env: dict[str, str] | None = None) -> ExecResult:
        if not argv:
            raise ValueError("argv must name a program")
        req = {"mode": "exec", "argv": [str(a) for a in argv], "files": _normalise_files(files),
               "limits": limits.model_dump(), "stdin": stdin.encode() if isinstance(stdin, str) else stdin,
               "env": {**self._env_vars(), **(env or {})}}
        return self._submit(req, limits)

    def run_python(self, source: str, *, files: Files | None = None, limits: Limits = Limits(),
                   stdin: str | bytes | None = None, args: Sequence[str] = ()) -> ExecResult:
        all_files = {**_normalise_files(files), SCRIPT: source.encode()}
        req = {"files": all_files, "limits": limits.model_dump(), "args": list(args),
               "stdin": stdin.encode() if isinstance(stdin, str) else stdin, "env": self._env_vars()}
        if self.warm and self.environment is None:  # the warm interpreter has the helper's packages, not the env's
            req.update(mode="inline", script=SCRIPT)
        else:
            req.update(mode="exec", argv=["{python}", "-E", "-s", SCRIPT, *args])
        return self._submit(req, limits)

    def max_cpu_seconds(self, limits: Limits) -> float:
        """Most CPU-seconds any run under ``limits`` can report as ``cpu_s`` (see ``_bounds``): the
        worker stops the run's whole cgroup at ``limits.cpu_s`` or at the wall clock."""
        return self.cpu.max_cpu_seconds(limits)

    def with_environment(self, env: PythonEnv) -> "ProcessSandbox":
        """This backend running ``env``: its venv mounted read-only at ENV_MOUNT, ``"{python}"`` its interpreter,
        its ``bin/`` first on PATH. One warm pool per environment, kept while this sandbox lives."""
        with self._lock:
            box = self._envs.get(env.key)
            if box is None:
                box = self._envs[env.key] = ProcessSandbox(warm=self.warm, python=self.python, cpus=self.cpus,
                                                           start_timeout_s=self.start_timeout_s, environment=env)
            return box

    def _env_vars(self) -> dict[str, str]:
        return env_vars(self.environment) if self.environment is not None else {}

    def close(self) -> None:
        with self._lock:
            self._stop_zygote()
            envs, self._envs = list(self._envs.values()), {}
        for box in envs:
            box.close()

    def __enter__(self) -> "ProcessSandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._stop_zygote()
        except Exception:
            pass

    # -- plumbing -------------------------------------------------------------------

    def _helper_argv(self, mode: str, fd: int) -> list[str]:
        argv = [self.python, "-I", HELPER, mode, str(fd), self._pyseccomp]
        if self.environment is not None:  # the helper mounts the venv into the root it builds
            argv.append(json.dumps({"python": self.environment.sandbox_python,
                                    "mounts": [[self.environment.path, ENV_MOUNT]]}))
        return argv

    def _spawn(self, mode: str, fd: int) -> subprocess.Popen:
        # A fresh exec with a minimal environment: the helper inherits no secrets.
        return subprocess.Popen(self._helper_argv(mode, fd), pass_fds=[fd], env=_HELPER_ENV,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)

    def start(self) -> None:
        """Start the zygote now instead of on the first run."""
        if self.warm:
            with self._lock:
                self._ensure_zygote()

    def _ensure_zygote(self) -> socket.socket:
        if self._ctrl is not None and self._zygote is not None and self._zygote.poll() is None:
            return self._ctrl
        self._stop_zygote()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = self._spawn("zygote", child.fileno())
        finally:
            child.close()
        parent.settimeout(self.start_timeout_s)
        try:
            msg = parent.recv(65536)
        except (socket.timeout, OSError) as e:
            proc.kill()
            parent.close()
            raise SandboxError(f"sandbox zygote did not start within {self.start_timeout_s}s: {e}") from e
        parent.settimeout(None)
        if not msg.startswith(b"ready"):
            proc.wait()
            parent.close()
            raise SandboxUnavailable(f"sandbox zygote failed: {msg.decode(errors='replace') or 'exited'}")
        self.info = json.loads(msg[6:])
        self._zygote, self._ctrl = proc, parent
        return parent

    def _stop_zygote(self) -> None:
        for sock in self._idle[True] + self._idle[False]:
            sock.close()
        self._idle = {True: [], False: []}
        if self._ctrl is not None:
            self._ctrl.close()  # EOF tells the zygote to exit
            self._ctrl = None
        if self._zygote is not None:
            try:
                self._zygote.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._zygote.kill()
                self._zygote.wait()
            self._zygote = None

    def _checkout(self, network: bool) -> tuple[socket.socket, subprocess.Popen | None]:
        """A worker connection: an idle one, a new one from the zygote, or (cold) a fresh helper."""
        if not self.warm:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                return ours, self._spawn("once-net" if network else "once", theirs.fileno())
            finally:
                theirs.close()
        with self._lock:
            if self._idle[network]:
                return self._idle[network].pop(), None
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                for attempt in range(2):
                    ctrl = self._ensure_zygote()
                    try:
                        _linux.send_fd(ctrl, theirs.fileno(), b"W1" if network else b"W0")
                        break
                    except OSError:
                        if attempt:
                            raise
                        self._stop_zygote()  # it died; one restart
            finally:
                theirs.close()
            return ours, None

    def _checkin(self, sock: socket.socket, network: bool) -> None:
        with self._lock:
            if self._ctrl is not None and len(self._idle[network]) < self.max_idle:
                self._idle[network].append(sock)
                return
        sock.close()

    def _submit(self, req: dict, limits: Limits) -> ExecResult:
        try:
            return self._submit_once(req, limits)
        except _NotStarted:
            # the worker failed while setting the run up (its cgroup), before the program started: the program
            # cannot have done anything yet, so one more try on a fresh worker is safe
            return self._submit_once(req, limits, retry=False)

    def _submit_once(self, req: dict, limits: Limits, retry: bool = True) -> ExecResult:
        worker, proc = self._checkout(limits.network)
        payload_ours, payload_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        reusable = False
        try:
            worker.settimeout(limits.timeout_s + 60)
            payload_ours.settimeout(limits.timeout_s + 60)
            # the worker gets the limits; the program reads its files and source itself,
            # so nothing of one run stays in the memory later runs are forked from
            hdr = {"limits": req["limits"], "cpu_quota": self.cpus, "cpu_poll_s": CPU_POLL_S}
            send_msg_fd(worker, hdr, payload_theirs.fileno())
            payload_theirs.close()
            try:
                send_msg(payload_ours, req)
            except BrokenPipeError:
                pass  # the worker gave up before reading the request: its reply says why
            payload_ours.close()
            reply = recv_msg(worker)
            reusable = "error" not in reply and "retire" not in reply  # a worker in doubt quits
        except (EOFError, OSError) as e:
            raise SandboxError(f"sandbox worker failed: {e}") from e
        finally:
            payload_ours.close()
            payload_theirs.close()
            if proc is not None:
                worker.close()
                proc.wait()
            elif reusable:
                self._checkin(worker, limits.network)
            else:
                worker.close()
        if "error" in reply:
            if retry and reply.get("before_start"):
                raise _NotStarted(reply["error"])
            raise SandboxError(f"sandbox worker failed: {reply['error']}")
        if reply.get("status") is None and reply.get("stderr", b"").startswith(b"budgetflow sandbox setup failed"):
            raise SandboxError(reply["stderr"].decode(errors="replace"))
        return classify(reply, limits, self.name)
