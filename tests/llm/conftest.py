"""The real vLLM server (SmolLM2-135M on the CPU, --enforce-eager), started once for the model-layer tests."""

from __future__ import annotations

import re

import httpx
import pytest

from budgetflow import Budget, Ledger, PriceBook

PRICE_PER_CPU_SECOND = 0.001  # $3.60 per engine-hour: big enough that budgets bind in a few calls


@pytest.fixture(scope="session")
def smol_server():
    try:
        import vllm  # noqa: F401
    except ImportError:
        pytest.fail("vLLM is not installed: the model-layer tests need the real engine (make test installs it)")
    from budgetflow.llm import VLLMServer, prepare

    with VLLMServer(prepare("smollm2-135m"), "smollm2-135m", device="cpu", max_model_len=2048) as server:
        yield server


@pytest.fixture(scope="session")
def prices() -> PriceBook:
    book = PriceBook()
    book.set("local/smollm2-135m", cpu_second=PRICE_PER_CPU_SECOND)
    book.set("openai/smollm2-135m", input_per_million=1.0, output_per_million=2.0)
    return book


@pytest.fixture(scope="session")
def engine(smol_server, prices):
    from budgetflow.llm import VLLMEngine

    eng = VLLMEngine("local/smollm2-135m", smol_server.base_url, "smollm2-135m", prices=prices,
                     server=smol_server, device="cpu")
    yield eng
    eng.close()


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(tmp_path / "ledger.db")
    yield led
    led.close()


@pytest.fixture
def account(ledger):
    return ledger.account("run", Budget(usd=5.0)).child("task")


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
