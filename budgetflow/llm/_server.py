"""A vLLM OpenAI-compatible server run as a managed subprocess: free loopback port, health check, logs kept,
clean shutdown, and no orphans (the server dies with us, even when we are SIGKILLed)."""

from __future__ import annotations

import atexit
import ctypes
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from ._models import CACHE_ROOT

# Nothing phones home from the engines budgetflow launches.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}

_PR_SET_PDEATHSIG = 1


class ServerError(RuntimeError):
    """The engine failed to start or died; the message ends with the tail of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    os.setsid()  # own process group: stop() signals the whole engine (API server + engine core workers)
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class _Spawner:
    """PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process. Servers are therefore
    forked from one long-lived daemon thread, so a server started from a short-lived worker thread is not killed
    when that worker finishes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs: "queue.Queue" = queue.Queue()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while True:
            args, kwargs, reply = self._jobs.get()
            try:
                reply.put((subprocess.Popen(*args, **kwargs), None))
            except BaseException as err:  # hand the error to the caller
                reply.put((None, err))

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="budgetflow-spawner", daemon=True)
                self._thread.start()
        reply: "queue.Queue" = queue.Queue()
        self._jobs.put((args, kwargs, reply))
        proc, err = reply.get()
        if err is not None:
            raise err
        return proc


_spawner = _Spawner()


def has_gpu() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


class VLLMServer:
    """`with VLLMServer(model_dir, "smollm2") as srv: srv.base_url` → http://127.0.0.1:PORT/v1"""

    def __init__(
        self,
        model_dir: str | Path,
        served_name: str,
        *,
        device: str = "auto",
        max_model_len: int = 4096,
        seed: int = 0,
        extra_args: list[str] | None = None,
        log_dir: str | Path | None = None,
        startup_timeout: float = 300.0,
        prefix_caching: bool = True,
    ):
        self.prefix_caching = prefix_caching
        self.model_dir = Path(model_dir)
        self.served_name = served_name
        self.device = ("gpu" if has_gpu() else "cpu") if device == "auto" else device
        self.max_model_len = max_model_len
        self.seed = seed
        self.extra_args = list(extra_args or [])
        self.log_path = Path(log_dir or CACHE_ROOT / "logs") / f"vllm-{served_name}-{os.getpid()}.log"
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._lock = threading.RLock()  # start() stops the server itself when startup fails

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        # `python -m` rather than the `vllm` console script, which the vllm-cpu distribution breaks
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
               "--model", str(self.model_dir), "--served-model-name", self.served_name,
               "--host", "127.0.0.1", "--port", str(self.port),
               "--seed", str(self.seed), "--max-model-len", str(self.max_model_len),
               "--disable-uvicorn-access-log"]
        if self.device == "cpu":
            cmd.append("--enforce-eager")  # startup 15-20 s instead of ~100 s on the CPU
        # repeated prompts (a task's waves, sibling expansions, tester and solver on one task prompt) skip their
        # prefill; vllm-cpu 0.32 supports it (its default too): said explicitly, and switchable for measuring
        cmd.append("--enable-prefix-caching" if self.prefix_caching else "--no-enable-prefix-caching")
        return cmd + self.extra_args

    def start(self) -> "VLLMServer":
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                return self
            if not (self.model_dir / "config.json").exists():
                raise ServerError(f"{self.model_dir} is not a prepared model; run: budgetflow models prepare")
            self.port = free_port()
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, **OFFLINE_ENV, **(CPU_ENV if self.device == "cpu" else {})}
            log = open(self.log_path, "ab")
            self.proc = _spawner.popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                         preexec_fn=_die_with_parent, stdin=subprocess.DEVNULL)
            log.close()
            atexit.register(self.stop)
            try:
                self._wait_healthy()
            except BaseException:
                self.stop()
                raise
            return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"vLLM exited with code {self.proc.returncode} during startup:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.root_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise ServerError(f"vLLM did not become healthy within {self.startup_timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        with self._lock:
            proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass
        try:  # engine-core workers share the group: make sure none outlives the server
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self) -> "VLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
