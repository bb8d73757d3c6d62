"""Model-layer fixtures; the vLLM server, prices and engine are shared from tests/conftest.py."""

from __future__ import annotations

import re

import httpx
import pytest

from budgetflow import Budget


@pytest.fixture
def account(ledger):
    return ledger.root("run", Budget(usd=5.0)).child("task")


class ServerCounters:
    """Token counters read from the server's own Prometheus metrics: the independent truth to compare with."""

    def __init__(self, root_url: str):
        self.root_url = root_url

    def read(self) -> dict[str, float]:
        text = httpx.get(f"{self.root_url}/metrics", timeout=10).text
        out = {"prompt": 0.0, "generation": 0.0, "requests": 0.0}
        for line in text.splitlines():
            m = re.match(r"vllm:(prompt_tokens_total|generation_tokens_total|request_success_total)\{.*\} (\S+)", line)
            if m:
                key = {"prompt_tokens_total": "prompt", "generation_tokens_total": "generation",
                       "request_success_total": "requests"}[m.group(1)]
                out[key] += float(m.group(2))
        return out

    def delta(self, before: dict[str, float]) -> dict[str, float]:
        after = self.read()
        return {k: after[k] - before[k] for k in after}


@pytest.fixture(scope="session")
def counters(smol_server) -> ServerCounters:
    return ServerCounters(smol_server.root_url)
