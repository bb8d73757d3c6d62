"""Docker backend: a fresh container per run (repo work, own images) or a warm pool of
containers for volume. Limits: cgroup memory (no swap) and pids per container, the run's
CPU on the container's cgroup, network_mode none, read-only rootfs with a size-capped
tmpfs, no-new-privileges, our own seccomp profile (the process backend's rules, see
_seccomp.py); the in-container runner keeps only CHOWN/SETUID/SETGID/KILL and runs the
program as nobody with no capabilities at all. A pool container that finds anything of a
run left after it (processes, files, IPC objects, sockets) is retired, never reused.

Every container carries labels naming its owner process; a new DockerSandbox removes
the ones whose owner is gone. A fresh container's runner stops itself at the wall
clock; a pool container's runner serves requests on its attach stream and exits, and
Docker removes it, as soon as that stream closes, so a killed parent leaves nothing
running for long.

A fresh container gets its request as argv (at most ~1.5 MB encoded); the pool sends it on stdin (no limit).
``Limits(network=True)`` means ``network_mode=host``: there is no bridge. The engine is ``DOCKER_HOST``, else
``/run/budgetflow-docker.sock`` where ``scripts/setup_docker.sh`` starts a private dockerd and imports the base
image (``BUDGETFLOW_SANDBOX_IMAGE``, default budgetflow/sandbox-base:bookworm) built offline with debootstrap.
"""
from __future__ import annotations

import atexit
import base64
import json
import os
import queue
import socket
import threading
import zlib
from pathlib import Path
from typing import Any, Sequence

from . import _seccomp
from ._backends import sandbox_backend
from ._bounds import CpuEnforcement
from ._classify import classify
from ._environments import PythonEnv, env_vars
from ._models import ExecResult, Files, Limits, SandboxError, SandboxUnavailable
from ._process import CPU_POLL_S, SCRIPT, _normalise_files

DEFAULT_IMAGE = os.environ.get("BUDGETFLOW_SANDBOX_IMAGE", "budgetflow/sandbox-base:bookworm")
DEFAULT_SOCKET = "/run/budgetflow-docker.sock"  # where scripts/setup_docker.sh starts dockerd
LABEL = "budgetflow.sandbox"
OWNER_LABEL = "budgetflow.owner"
USER = "0:0"  # the runner; it drops the program to nobody (see _container_runner.py)
_RUNNER_SRC = (Path(__file__).with_name("_container_runner.py")).read_text()
_MARK = b"@@budgetflow-result@@"
_CHUNK = 100_000  # one argv string may not exceed 128 KiB (MAX_ARG_STRLEN)
_MAX_REQUEST = 1_500_000  # total argv must stay under ARG_MAX (2 MiB)
# The runner shares the container's cgroup with the program (which runs at nice 10, below it) and kills by forking
# a nobody child: slower to stop a run than the process backend's worker freezing a cgroup.
STOP_LATENCY_S = 0.25


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _owner_alive(owner: str) -> bool:
    host, pid, start = (owner.split(":") + ["", "", ""])[:3]
    if host != socket.gethostname():
        return True  # not ours to judge
    return pid.isdigit() and _start_time(int(pid)) == start


def engine_url() -> str | None:
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    if os.path.exists(DEFAULT_SOCKET):
        return f"unix://{DEFAULT_SOCKET}"
    return None


@sandbox_backend("docker", priority=10)  # where the process backend cannot run (not root), or for own images
class DockerSandbox:
    name = "docker"

    def __init__(self, *, image: str = DEFAULT_IMAGE, base_url: str | None = None, pool_size: int = 2,
                 cpus: float | None = None) -> None:
        try:
            import docker
            from docker.types import Ulimit
        except ImportError as e:
            raise SandboxUnavailable("docker backend needs the docker SDK: pip install docker") from e
        self._docker, self._Ulimit = docker, Ulimit
        url = base_url or engine_url()
        try:
            self.client = docker.DockerClient(base_url=url, timeout=600) if url else docker.from_env(timeout=600)
            self.client.ping()
        except Exception as e:
            raise SandboxUnavailable(
                f"no Docker engine answers at {url or 'the default socket'} ({type(e).__name__}: {e}); "
                "run `bash scripts/setup_docker.sh` and export the DOCKER_HOST it prints") from e
        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound as e:
            raise SandboxUnavailable(
                f"Docker image {image} is missing; `bash scripts/setup_docker.sh` builds it offline") from e
        self.image, self.pool_size, self.base_url = image, pool_size, url
        self._envs: dict[str, DockerSandbox] = {}
        machine = int(self.client.info().get("NCPU") or os.cpu_count() or 1)  # the engine's, maybe remote
        self.cpus = cpus if cpus is not None and cpus < machine else None
        self.cpu = CpuEnforcement(machine, self.cpus, CPU_POLL_S, STOP_LATENCY_S)
        self._seccomp = _seccomp.docker_profile()
        self.owner = _owner()
        self._pools: dict[tuple, queue.LifoQueue] = {}
        self._lock = threading.Lock()
        self._live: set[str] = set()
        self.swept = self.sweep()
        atexit.register(self.close)

    # -- housekeeping -----------------------------------------------------------------

    def sweep(self) -> int:
        """Remove labelled containers whose owner process is gone (a killed parent's)."""
        n = 0
        # the low-level listing: the high-level one inspects each container afterwards and fails with NotFound
        # when one of them is removed in between (pool containers remove themselves when their parent dies)
        for c in self.client.api.containers(all=True, filters={"label": LABEL}):
            if not _owner_alive((c.get("Labels") or {}).get(OWNER_LABEL, "")):
                try:
                    self.client.api.remove_container(c["Id"], force=True)
                    n += 1
                except self._docker.errors.APIError:
                    pass
        return n

    def close(self) -> None:
        with self._lock:
            ids, self._live = list(self._live), set()
            pools, self._pools = list(self._pools.values()), {}
            envs, self._envs = list(self._envs.values()), {}
        for box in envs:
            box.close()
        for pool in pools:
            while not pool.empty():
                pool.get_nowait().close()
        for cid in ids:
            try:
                self.client.api.remove_container(cid, force=True)
            except Exception:
                pass

    def with_environment(self, env: PythonEnv) -> "DockerSandbox":
        """This backend running ``env``: containers of an image layered on this one with the environment's venv at
        ENV_MOUNT and first on PATH (made once, see ``_docker_env``); ``"{python}"`` is its interpreter."""
        from ._docker_env import ensure_env_image

        with self._lock:
            box = self._envs.get(env.key)
        if box is None:
            tag = ensure_env_image(self.client, self.image, env, {LABEL: "env", OWNER_LABEL: self.owner})
            box = DockerSandbox(image=tag, base_url=self.base_url, pool_size=self.pool_size, cpus=self.cpus)
            box.python_argv0, box.extra_env = env.sandbox_python, env_vars(env)
            with self._lock:
                box = self._envs.setdefault(env.key, box)
        return box

    python_argv0 = "python3"  # what "{python}" runs: the image's interpreter, or an environment's
    extra_env: dict[str, str] = {}  # an environment's PATH (the runner sets its own, not the image's)

    def max_cpu_seconds(self, limits: Limits) -> float:
        """Most CPU-seconds any run under ``limits`` can report as ``cpu_s`` (see ``_bounds``): the runner
        stops the run at ``limits.cpu_s`` of the container's CPU or at the wall clock."""
        return self.cpu.max_cpu_seconds(limits)

    def __enter__(self) -> "DockerSandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API -------------------------------------------------------------------

    def run(self, argv: Sequence[str], *, files: Files | None = None, limits: Limits = Limits(),
            stdin: str | bytes | None = None, env: dict[str, str] | None = None,
            fresh: bool = True) -> ExecResult:
        if not argv:
            raise ValueError("argv must name a program")
        cmd = [str(a) for a in argv]
        if cmd[0] == "{python}":  # the image's interpreter (or its environment's)
            cmd[0] = self.python_argv0
        return self._run(cmd, _normalise_files(files), limits, stdin, {**self.extra_env, **(env or {})}, fresh)

    def run_python(self, source: str, *, files: Files | None = None, limits: Limits = Limits(),
                   stdin: str | bytes | None = None, args: Sequence[str] = (), fresh: bool = False) -> ExecResult:
        all_files = {**_normalise_files(files), SCRIPT: source.encode()}
        argv = [self.python_argv0, "-E", "-s", SCRIPT, *map(str, args)]
        return self._run(argv, all_files, limits, stdin, dict(self.extra_env), fresh)

    # -- plumbing ---------------------------------------------------------------------

    @staticmethod
    def _request(argv: list[str], files: dict[str, bytes], limits: Limits, stdin: Any,
                 env: dict[str, str]) -> bytes:
        if isinstance(stdin, str):
            stdin = stdin.encode()
        req = {"argv": argv, "limits": {**limits.model_dump(), "cpu_poll_s": CPU_POLL_S}, "env": env,
               "files": {k: base64.b64encode(v).decode() for k, v in files.items()},
               "stdin": base64.b64encode(stdin or b"").decode()}
        return zlib.compress(json.dumps(req).encode())

    @staticmethod
    def _command(blob: bytes) -> list[str]:
        """A fresh container gets its request as argv (the pool sends it on stdin)."""
        text = base64.b64encode(blob).decode()
        if len(text) > _MAX_REQUEST:
            raise SandboxError(f"request is {len(text)} bytes encoded; a fresh container takes at most "
                               f"{_MAX_REQUEST} as arguments (use the pool, or put large inputs in the image)")
        chunks = [text[i:i + _CHUNK] for i in range(0, len(text), _CHUNK)]
        return ["python3", "-I", "-c", _RUNNER_SRC, *chunks]

    def _create_kwargs(self, limits: Limits, command: list[str]) -> dict[str, Any]:
        cpu = max(1, int(limits.cpu_s + 0.999))
        return dict(
            image=self.image, command=command, user=USER, working_dir="/tmp", detach=True,
            init=True,  # docker-init as pid 1 reaps orphans, so zombies never eat the pids limit
            # "host" only when the caller asked for the network; there is no bridge here
            network_mode="host" if limits.network else "none",
            read_only=True,
            tmpfs={"/tmp": f"size={limits.disk_bytes},nr_inodes={max(1024, limits.disk_bytes // 4096)},mode=1777",
                   "/dev/shm": "size=16m,nr_inodes=256,mode=1777"},
            mem_limit=limits.memory_bytes, memswap_limit=limits.memory_bytes,
            pids_limit=limits.max_processes + 4,  # + docker-init, idle sleep, the runner, its wipe child
            cap_drop=["ALL"], cap_add=["CHOWN", "SETUID", "SETGID", "KILL"],
            security_opt=["no-new-privileges", f"seccomp={self._seccomp}"],
            nano_cpus=int(self.cpus * 1e9) if self.cpus else None,
            ulimits=[self._Ulimit(name="core", soft=0, hard=0),
                     self._Ulimit(name="cpu", soft=cpu + 5, hard=cpu + 6)],
            labels={LABEL: "1", OWNER_LABEL: self.owner},
        )

    def _run(self, argv: list[str], files: dict[str, bytes], limits: Limits, stdin: Any,
             env: dict[str, str], fresh: bool) -> ExecResult:
        blob = self._request(argv, files, limits, stdin, env)
        if fresh or self.pool_size <= 0 or limits.network:
            facts, name = self._run_fresh(self._command(blob), limits), "docker"
        else:
            facts, name = self._run_pooled(blob, limits), "docker-pool"
        return classify(facts, limits, name)

    def _run_fresh(self, command: list[str], limits: Limits) -> dict:
        c = self.client.containers.create(**self._create_kwargs(limits, command))
        with self._lock:
            self._live.add(c.id)
        try:
            c.start()
            try:
                c.wait(timeout=limits.timeout_s + 60)
            except Exception as e:
                c.kill()
                raise SandboxError(f"container {c.short_id} outlived its wall clock; killed") from e
            out = c.logs(stdout=True, stderr=False)
            err = c.logs(stdout=False, stderr=True)
            c.reload()
            oom = bool(c.attrs.get("State", {}).get("OOMKilled"))
        finally:
            self._forget(c.id)
        return self._parse(out, err, oom)

    def _pool_key(self, limits: Limits) -> tuple:
        return (limits.memory_bytes, limits.max_processes, limits.disk_bytes, limits.cpu_s)

    def _checkout(self, limits: Limits) -> "_Served":
        key = self._pool_key(limits)
        with self._lock:
            pool = self._pools.setdefault(key, queue.LifoQueue())
        try:
            return pool.get_nowait()
        except queue.Empty:
            pass
        kwargs = self._create_kwargs(limits, ["python3", "-I", "-c", _RUNNER_SRC, "--serve"])
        # detach=False + stdin_open makes Docker set StdinOnce: when our attach stream goes
        # (a killed parent included) the runner reads EOF and exits; auto_remove deletes it
        kwargs.update(detach=False, stdin_open=True, auto_remove=True)
        c = self.client.containers.create(**kwargs)
        with self._lock:
            self._live.add(c.id)
        try:
            served = _Served(self.client.api, c.id)
            c.start()
        except Exception:
            self._forget(c.id)
            raise
        return served

    def _checkin(self, served: "_Served", limits: Limits, reuse: bool) -> None:
        with self._lock:
            pool = self._pools.get(self._pool_key(limits))
        if reuse and pool is not None and pool.qsize() < self.pool_size:
            pool.put(served)
        else:
            served.close()
            self._forget(served.cid)

    def _forget(self, cid: str) -> None:
        with self._lock:
            self._live.discard(cid)
        try:
            self.client.api.remove_container(cid, force=True)
        except Exception:
            pass

    def _run_pooled(self, blob: bytes, limits: Limits) -> dict:
        served = self._checkout(limits)
        ok = False
        try:
            answer, err = served.call(blob, timeout=limits.timeout_s + 60)
            if answer is None:
                facts = self._parse(b"", err, self._oom_killed(served.cid))
            else:
                facts = self._parse(_MARK + answer + b"\n", err, False)
            # a container whose memory limit fired may hold damage we cannot see, one whose runner found
            # something of the run left (facts["retire"] says what) would hand it to the next run: retire both
            ok = (answer is not None and not facts.get("oom_killed") and facts.get("status") is not None
                  and not facts.get("retire"))
            return facts
        finally:
            self._checkin(served, limits, ok)

    def _oom_killed(self, cid: str) -> bool:
        try:
            return bool(self.client.api.inspect_container(cid)["State"].get("OOMKilled"))
        except Exception:
            return False

    @staticmethod
    def _parse(out: bytes, err: bytes, oom: bool) -> dict:
        idx = out.rfind(_MARK)
        if idx < 0:
            if oom:  # the whole container was killed for memory before the runner could report
                return {"status": None, "oom_killed": True, "stdout": b"", "stderr": b""}
            raise SandboxError(f"container runner gave no result: {err.decode(errors='replace')[-500:]}")
        facts = json.loads(out[idx + len(_MARK):].split(b"\n", 1)[0])
        facts["stdout"] = base64.b64decode(facts.get("stdout", ""))
        facts["stderr"] = base64.b64decode(facts.get("stderr", ""))
        facts["oom_killed"] = bool(facts.get("oom_killed")) or oom
        return facts


class _Served:
    """A pool container's runner in --serve mode, reached through an attach stream:
    requests go to its stdin, answers come back on stdout (Docker multiplexes stdout and
    stderr into 8-byte-headed frames, since the container has no tty)."""

    def __init__(self, api: Any, cid: str) -> None:
        self.cid = cid
        # what APIClient.attach_socket does, keeping the response alive with the socket
        self._resp = api.post(api._url("/containers/{0}/attach", cid), None, stream=True,
                              params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1},
                              headers={"Connection": "Upgrade", "Upgrade": "tcp"})
        api._raise_for_status(self._resp)
        raw = self._resp.raw._fp.fp.raw
        self.sock = getattr(raw, "_sock", raw)
        self._out = bytearray()
        self._err = bytearray()

    def call(self, blob: bytes, timeout: float) -> tuple[bytes | None, bytes]:
        """Send one request; (answer, stderr tail), answer None if the runner died."""
        self.sock.settimeout(timeout)
        self._err.clear()
        self.sock.sendall(len(blob).to_bytes(8, "big") + blob)
        while True:
            if len(self._out) >= 8:
                n = int.from_bytes(self._out[:8], "big")
                if len(self._out) >= 8 + n:
                    answer = bytes(self._out[8:8 + n])
                    del self._out[:8 + n]
                    return answer, bytes(self._err[-4000:])
            head = self._read(8)
            if head is None:
                return None, bytes(self._err[-4000:])
            body = self._read(int.from_bytes(head[4:], "big"))
            if body is None:
                return None, bytes(self._err[-4000:])
            (self._out if head[0] == 1 else self._err).extend(body)

    def _read(self, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def close(self) -> None:
        try:
            self.sock.close()
            self._resp.close()
        except Exception:
            pass
