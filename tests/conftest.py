"""Shared fixtures: real SQLite files and a real PostgreSQL server started for the test session."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server on loopback (or the one named by BUDGETFLOW_TEST_PG_URL)."""
    url = os.environ.get("BUDGETFLOW_TEST_PG_URL")
    if url:
        yield url
        return
    from budgetflow.devtools import TemporaryPostgres

    with TemporaryPostgres() as pg:
        yield pg.url


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = pg_server.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request) -> str:
    """Run a test against both ledger backends."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real `budgetflow` command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "budgetflow", *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
    )
