"""A throwaway PostgreSQL server on loopback, for tests and benchmarks.

Runs the real server binaries (Debian's `postgresql` package) from a temporary data directory; as root it drops to
the `postgres` user, since the server refuses to run as root. Nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_postgres_bin() -> Path | None:
    """The directory holding initdb/postgres, or None when the server is not installed."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TemporaryPostgres:
    """`with TemporaryPostgres() as pg: Ledger(pg.url)`; the data directory is deleted on exit."""

    def __init__(self, *, startup_timeout: float = 60.0):
        self.bin = find_postgres_bin()
        if self.bin is None:
            raise RuntimeError(
                "PostgreSQL server binaries not found (initdb). Install them: apt-get install -y postgresql"
            )
        self.startup_timeout = startup_timeout
        self.port = _free_port()
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_server_user(self) -> dict:
        if os.geteuid() != 0:
            return {}
        user = pwd.getpwnam("postgres")
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def start(self) -> "TemporaryPostgres":
        self.dir = Path(tempfile.mkdtemp(prefix="budgetflow-pg-"))
        data, sock = self.dir / "data", self.dir / "sock"
        sock.mkdir()
        drop = self._as_server_user()
        if drop:
            os.chmod(self.dir, 0o755)
            for path in (self.dir, sock):
                os.chown(path, drop["user"], drop["group"])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
        subprocess.run(
            [str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True, env=env, cwd=self.dir, **drop,
        )
        log = open(self.dir / "server.log", "wb")
        self.proc = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(data), "-p", str(self.port), "-h", "127.0.0.1",
             "-k", str(sock), "-c", "fsync=off", "-c", "max_connections=300", "-c", "shared_buffers=64MB"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.dir, **drop,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited at startup:\n{(self.dir / 'server.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                ready = subprocess.run(
                    [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
                )
                if ready.returncode == 0:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"PostgreSQL did not become ready within {self.startup_timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: smart shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> "TemporaryPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
