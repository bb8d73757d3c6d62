"""Where built fixtures live, the lock that keeps two builders apart, and the account a build spends on."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..budget import Account, Budget, Ledger

# What one fixture build (checking every QuixBugs program, or trying one project's mutants) may spend in sandbox
# CPU-seconds when the caller gives no account of its own: a real cap, on a ledger kept in the cache.
FIXTURE_BUILD_CPU_SECONDS = 3600.0
FIXTURE_LEDGER = "fixture-builds.db"


def cache_root() -> Path:
    """budgetflow's cache directory: $BUDGETFLOW_CACHE, else ~/.cache/budgetflow."""
    return Path(os.environ.get("BUDGETFLOW_CACHE") or Path.home() / ".cache" / "budgetflow")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created): one build of a fixture directory at a time, across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def build_account(account: Account | None, what: str = "fixtures") -> Iterator[Account]:
    """The caller's account, or a root of its own capped at FIXTURE_BUILD_CPU_SECONDS on the cache's fixture ledger
    (kept, so every build's spend can be audited afterwards)."""
    if account is not None:
        yield account
        return
    with Ledger(cache_root() / FIXTURE_LEDGER) as ledger:
        name = f"build/{what}/{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        yield ledger.root(name, Budget(cpu_seconds=FIXTURE_BUILD_CPU_SECONDS))
