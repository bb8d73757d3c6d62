"""Who holds a reservation, and whether that process is still alive.

Each `Ledger` instance is an *owner* with a random id. Before it writes its first reservation it takes a lease that
ends the instant the process dies, even under SIGKILL:
- SQLite: an exclusive `flock` on `<realpath of db>-owners/<owner>.lock`. The path is resolved, so the same file
  opened through a symlink or another relative path has one lease directory. The descriptor is close-on-exec and is
  closed in a child forked without exec, so no other process can keep a dead owner's lease alive.
- PostgreSQL: a session advisory lock on a dedicated connection, plus a heartbeat row renewed by a thread. An owner
  is alive while it holds the lock OR its heartbeat is younger than the ttl it promised, so a dropped connection
  (idle timeout, server restart) does not make a live process look dead: the thread reconnects and re-locks.
  A process that cannot reach the database for longer than its ttl is treated as dead — its open reservations are
  then charged in full, and its own later commit of them fails (ReservationClosed): the cap holds either way.
Recovery settles only reservations whose owner is not alive, so a live owner is never robbed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import threading
import weakref
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, text


class OwnerLease(Protocol):
    def acquire(self) -> None: ...
    def release(self) -> None: ...
    def is_alive(self, owner: str) -> bool: ...
    def forget(self, owner: str) -> None: ...


_LEASES: "weakref.WeakSet[FileLease | PostgresLease]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A child forked without exec must not hold (or keep alive) its parent's leases.
    for lease in list(_LEASES):
        lease._drop_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


class FileLease:
    """Liveness by flock: the kernel releases the lock when the last descriptor of the open file is closed."""

    def __init__(self, db_path: str, owner: str):
        self.dir = Path(os.path.realpath(db_path) + "-owners")
        self.owner = owner
        self._fd: int | None = None
        _LEASES.add(self)

    def _path(self, owner: str) -> Path:
        return self.dir / f"{owner}.lock"

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path(self.owner), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"pid={os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _drop_in_child(self) -> None:
        # the parent's descriptor stays open, so the lock stays the parent's; the child's copy must not outlive it
        self.release()

    def is_alive(self, owner: str) -> bool:
        if owner == self.owner:
            return self._fd is not None
        try:
            fd = os.open(self._path(owner), os.O_RDWR | os.O_CLOEXEC)
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


_NOW_US = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint"


class PostgresLease:
    """Liveness by a session advisory lock, backed by a heartbeat that outlives a dropped connection."""

    def __init__(self, engine: Engine, owner: str, ttl_s: float = 30.0):
        self.engine = engine
        self.owner = owner
        self.ttl_s = ttl_s
        self._conn = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        _LEASES.add(self)

    def _connect(self) -> None:
        """A fresh lease connection holding the lock, and a fresh heartbeat (caller holds self._lock)."""
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _advisory_key(self.owner)})
        conn.execute(text(
            f"INSERT INTO bf_lease_owner (owner, heartbeat_us, ttl_us, host, pid) VALUES (:o, {_NOW_US}, :ttl, :h, :p)"
            f" ON CONFLICT (owner) DO UPDATE SET heartbeat_us = {_NOW_US}"),
            {"o": self.owner, "ttl": int(self.ttl_s * 1e6), "h": socket.gethostname(), "p": os.getpid()})
        self._conn = conn

    def acquire(self) -> None:
        with self._lock:
            if self._conn is not None:
                return
            self._connect()
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name="budgetflow-lease", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            with self._lock:
                if self._conn is None:
                    return
                try:
                    self._conn.execute(text(f"UPDATE bf_lease_owner SET heartbeat_us = {_NOW_US} WHERE owner = :o"),
                                       {"o": self.owner})
                except Exception:  # the lease connection dropped: take the lock again on a new one
                    try:
                        self._conn.invalidate()
                    except Exception:
                        pass
                    self._conn = None
                    try:
                        self._connect()
                    except Exception:
                        pass  # the database is unreachable: try again at the next beat

    @property
    def held(self) -> bool:
        return self._conn is not None

    def release(self) -> None:
        self._stop.set()
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.execute(text("DELETE FROM bf_lease_owner WHERE owner = :o"), {"o": self.owner})
            except Exception:
                pass
            conn.invalidate()  # really close it: a pooled connection would keep holding the lock
            conn.close()

    def _drop_in_child(self) -> None:
        # never close the inherited socket here: that would end the parent's session (and its lock)
        self._conn, self._thread = None, None

    def is_alive(self, owner: str) -> bool:
        if owner == self.owner:
            return self._conn is not None
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            key = _advisory_key(owner)
            taken = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            if not taken:
                return True
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            beat = conn.execute(text(f"SELECT {_NOW_US} - heartbeat_us < ttl_us FROM bf_lease_owner WHERE owner = :o"),
                                {"o": owner}).scalar()
            return bool(beat)

    def forget(self, owner: str) -> None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("DELETE FROM bf_lease_owner WHERE owner = :o"), {"o": owner})


class ProcessLocalLease:
    """In-memory SQLite lives and dies with this process: every owner in it is alive."""

    def acquire(self) -> None: ...
    def release(self) -> None: ...
    def is_alive(self, owner: str) -> bool:
        return True
    def forget(self, owner: str) -> None: ...
