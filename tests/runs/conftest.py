"""Batch-run tests: the real `budgetflow run` command line in subprocesses, talking to the session's SmolLM2 vLLM server
by URL (`vllm/smollm2-135m@<base_url>`, priced with --price-cpu-hour, so no second server starts), the real process
sandbox, real SQLite and PostgreSQL ledgers, a real Ray cluster and a real headless Chromium."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import PRICE_PER_CPU_SECOND, run_cli

PRICE = ["--price-cpu-hour", str(PRICE_PER_CPU_SECOND * 3600)]  # $3.60 per engine-hour: budgets bind in a few calls
SMALL = ["--max-samples", "2", "--max-tokens", "32"]  # keep every task to a couple of short calls


@pytest.fixture(scope="session")
def smol_base_url(request) -> str:
    """The session's SmolLM2 server, or one already running named by BUDGETFLOW_TEST_SMOL_URL (http://.../v1)."""
    url = os.environ.get("BUDGETFLOW_TEST_SMOL_URL")
    if url:
        return url.rstrip("/")
    return request.getfixturevalue("smol_server").base_url


@pytest.fixture(scope="session")
def smol_model(smol_base_url) -> str:
    return f"vllm/smollm2-135m@{smol_base_url}"


def bf_run(*args: str, timeout: float = 300):
    return run_cli("run", *args, timeout=timeout)


def results(out: Path) -> list[dict]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
