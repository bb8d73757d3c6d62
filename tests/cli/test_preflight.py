"""llm.preflight in process: what it checks without the network, and where it may connect (configured endpoints
only, never past a proxy, nothing sent)."""

from __future__ import annotations

import pytest

from budgetflow import PriceBook
from budgetflow.llm import ModelCheckError, ProviderUnreachable, check_model, probe_model


def test_offline_checks(monkeypatch):
    book = PriceBook()
    book.set("local/smollm2-135m", cpu_hour=0.1)
    book.set("vllm/qwen", cpu_hour=0.1)
    assert check_model("local/smollm2-135m", prices=book) == []  # prepared by the test setup
    assert check_model("vllm/qwen@http://127.0.0.1:9/v1", prices=book) == []  # no key needed, nothing sent
    with pytest.raises(ModelCheckError, match="use vllm/<served-model>@<base-url>"):
        check_model("vllm/qwen@localhost:8000", prices=book)
    with pytest.raises(ModelCheckError, match="no price"):
        check_model("vllm/other@http://127.0.0.1:9/v1", prices=book)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    book.set("anthropic/claude-x", input_per_million=1, output_per_million=5)
    with pytest.raises(ModelCheckError, match="missing: ANTHROPIC_API_KEY"):
        check_model("anthropic/claude-x", prices=book)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    assert check_model("anthropic/claude-x", prices=book) == []


def test_probes_only_configured_endpoints(monkeypatch, closed_port):
    for var in ("OPENAI_API_BASE", "OPENAI_BASE_URL", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY",
                "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert probe_model("openai/gpt-4o-mini") is None  # the hosted default: its first call tells, nothing probed
    assert probe_model("local/smollm2-135m") is None  # served by budgetflow itself
    url = f"http://127.0.0.1:{closed_port}/v1"
    monkeypatch.setenv("OPENAI_API_BASE", url)
    with pytest.raises(ProviderUnreachable, match=f"cannot connect to the provider at {url}"):
        probe_model("openai/gpt-4o-mini")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port}")
    assert probe_model("openai/gpt-4o-mini") == url  # calls go through the proxy: a direct connect proves nothing
