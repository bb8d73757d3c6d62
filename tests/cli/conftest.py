"""CLI tests: the real `budgetflow` command line in subprocesses, in an empty working directory, so a test sees
everything a command writes. The session's SmolLM2 vLLM server (tests/runs) is used only where a refusal needs a
live server to be told apart."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.runs.conftest import smol_base_url, smol_model  # noqa: F401  (fixtures, shared with the run tests)


def cli(*args: str, cwd: Path, env: dict[str, str | None] | None = None, timeout: float = 120
        ) -> subprocess.CompletedProcess:
    """`budgetflow ARGS` run from `cwd`, with `env` changes (None: unset). Output is piped, as in a script."""
    environ = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)}
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return subprocess.run([sys.executable, "-m", "budgetflow", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=environ)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The command's only line of output, an `error: ...` line on stderr."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert proc.stdout == "", proc.stdout
    return lines[0]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty directory to run in: after a refusal it must still be empty."""
    path = tmp_path / "cwd"
    path.mkdir()
    return path


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback socket that listens but never accepts: whether anyone connected is readable afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        s.settimeout(0.2)
        yield s


def connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except TimeoutError:
        return False
    conn.close()
    return True
