"""Who holds a reservation, and whether that process is still alive.

Each `Ledger` instance is an *owner* with a random id. Before it writes its first reservation it takes a lease that
the operating system or the database drops the instant the process dies, even under SIGKILL:
- SQLite: an exclusive `flock` on `<db>-owners/<owner>.lock`;
- PostgreSQL: a session-level advisory lock held on a dedicated connection.
Recovery settles only reservations whose owner's lease can be taken, so a live owner is never robbed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, text


class OwnerLease(Protocol):
    def acquire(self) -> None: ...
    def release(self) -> None: ...
    def is_alive(self, owner: str) -> bool: ...
    def forget(self, owner: str) -> None: ...


class FileLease:
    """Liveness by flock: the kernel releases the lock when the holder dies."""

    def __init__(self, db_path: str, owner: str):
        self.dir = Path(db_path + "-owners")
        self.owner = owner
        self._fd: int | None = None

    def _path(self, owner: str) -> Path:
        return self.dir / f"{owner}.lock"

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path(self.owner), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"pid={os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def is_alive(self, owner: str) -> bool:
        if owner == self.owner:
            return self._fd is not None
        try:
            fd = os.open(self._path(owner), os.O_RDWR)
        except FileNotFoundError:
            return False  # never got a lease file, or it was cleaned up after recovery
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the probe lock if we took it
        return False

    def forget(self, owner: str) -> None:
        self._path(owner).unlink(missing_ok=True)


def _advisory_key(owner: str) -> int:
    return int.from_bytes(hashlib.sha256(owner.encode()).digest()[:8], "big", signed=True)


class PostgresLease:
    """Liveness by a session advisory lock: the server drops it when the holder's connection closes."""

    def __init__(self, engine: Engine, owner: str):
        self.engine = engine
        self.owner = owner
        self._conn = None
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            if self._conn is None:
                conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _advisory_key(self.owner)})
                self._conn = conn

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.invalidate()  # really close it: a pooled connection would keep holding the lock
                self._conn.close()
                self._conn = None

    def is_alive(self, owner: str) -> bool:
        if owner == self.owner:
            return self._conn is not None
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            key = _advisory_key(owner)
            taken = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            if taken:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            return not taken

    def forget(self, owner: str) -> None:
        pass


class ProcessLocalLease:
    """In-memory SQLite lives and dies with this process: every owner in it is alive."""

    def acquire(self) -> None: ...
    def release(self) -> None: ...
    def is_alive(self, owner: str) -> bool:
        return True
    def forget(self, owner: str) -> None: ...
