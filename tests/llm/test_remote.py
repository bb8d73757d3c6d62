"""The LiteLLM path (openai/ + api_base) against the real vLLM server, through a fault-injecting proxy."""

from __future__ import annotations

import pytest

from budgetflow.llm import LiteLLMModel, LLMError

from .fault_proxy import FaultProxy

MODEL = "openai/smollm2-135m"
PROMPT = "Write a Python function that adds two numbers."


@pytest.fixture
def proxy(smol_server):
    with FaultProxy(smol_server.root_url) as p:
        yield p


def _model(proxy, prices, **kw) -> LiteLLMModel:
    return LiteLLMModel(MODEL, prices=prices, api_base=proxy.url, api_key="local", backoff=0.05, **kw)


def _kinds(ledger):
    return [e.kind for e in ledger.entries(account="task")]


@pytest.mark.parametrize("n, logprobs", [(1, None), (8, None), (1, 2)])
def test_usage_in_ledger_equals_usage_the_server_reported(proxy, prices, account, counters, n, logprobs):
    before = counters.read()
    gen = _model(proxy, prices).generate(PROMPT, account=account, n=n, max_tokens=20, temperature=0.7,
                                         logprobs=logprobs)
    (reported,) = proxy.upstream_usage
    spent = account.spent()
    assert spent.input_tokens == reported["prompt_tokens"] == gen.usage.input_tokens
    assert spent.output_tokens == reported["completion_tokens"] == counters.delta(before)["generation"]
    assert spent.usd == pytest.approx((reported["prompt_tokens"] * 1.0 + reported["completion_tokens"] * 2.0) / 1e6)
    assert len(gen.completions) == n and gen.attempts == 1
    if logprobs:
        assert gen.completions[0].logprobs and len(gen.completions[0].logprobs[0].top) >= 1


@pytest.mark.parametrize("status, settled", [("429", "release"), ("500", "commit")])
def test_provider_error_then_retry_each_attempt_metered(proxy, prices, account, ledger, status, settled):
    proxy.modes.extend([status])
    gen = _model(proxy, prices).generate(PROMPT, account=account, max_tokens=16)
    assert gen.attempts == 2 and proxy.received == 2 and proxy.forwarded == 1
    # a 429 provably cost nothing; a 5xx may come after the work (a gateway's), so it is charged as reserved
    assert _kinds(ledger) == ["open", "reserve", settled, "reserve", "commit"]
    (reported,) = proxy.upstream_usage
    charged_first = 0 if settled == "release" else 16  # as reserved: max_tokens
    assert account.spent().output_tokens == reported["completion_tokens"] + charged_first
    assert any(f"HTTP {status}" in note for note in gen.notes)


@pytest.mark.parametrize("fault", ["malformed", "cut:3", "delay:4"])
def test_unknown_outcomes_are_charged_as_reserved(proxy, prices, account, ledger, counters, fault):
    proxy.modes.append(fault)
    before = counters.read()
    model = _model(proxy, prices, timeout=2.0)
    gen = model.generate(PROMPT, account=account, max_tokens=16)
    assert gen.attempts == 2 and proxy.forwarded == 2  # the server did the work both times
    entries = [e for e in ledger.entries(account="task") if e.kind != "open"]
    assert [e.kind for e in entries] == ["reserve", "commit", "reserve", "commit"]
    assert entries[0].reservation == entries[1].reservation
    assert entries[1].amounts == entries[0].amounts  # unknown outcome: charged in full, as reserved
    assert "charged as reserved" in gen.notes[0]
    # nothing lost: what was charged covers everything the server generated across both attempts
    generated = counters.delta(before)["generation"]
    assert account.spent().output_tokens >= generated
    second = proxy.upstream_usage[-1]
    assert entries[3].amounts["output_tokens"] == second["completion_tokens"]  # the good attempt is exact
    assert account.held().usd == 0


def test_all_attempts_failing_is_a_clear_error_with_nothing_charged(proxy, prices, account, ledger):
    proxy.modes.extend(["429", "429"])
    with pytest.raises(LLMError, match="all 2 attempts failed"):
        _model(proxy, prices, max_retries=1).generate(PROMPT, account=account, max_tokens=16)
    assert _kinds(ledger) == ["open", "reserve", "release", "reserve", "release"]
    assert account.spent().usd == 0 and proxy.forwarded == 0


def test_fallback_model_is_tried_and_metered_separately(proxy, smol_server, prices, account, ledger):
    prices.set("openai/smollm2-fallback", input_per_million=3.0, output_per_million=6.0)
    proxy.modes.extend(["429"])
    with FaultProxy(smol_server.root_url) as second:
        model = LiteLLMModel(MODEL, prices=prices, api_base=proxy.url, api_key="local", max_retries=0,
                             fallbacks=[{"model": "openai/smollm2-135m", "api_base": second.url, "api_key": "x"}])
        gen = model.generate(PROMPT, account=account, max_tokens=12)
    assert gen.attempts == 2 and second.forwarded == 1 and proxy.forwarded == 0
    assert _kinds(ledger) == ["open", "reserve", "release", "reserve", "commit"]


def test_a_bad_request_is_not_retried(proxy, prices, account, ledger):
    proxy.modes.append("400")
    with pytest.raises(LLMError, match="refused"):
        _model(proxy, prices).generate(PROMPT, account=account, max_tokens=16)
    assert proxy.received == 1 and _kinds(ledger) == ["open", "reserve", "release"]


def test_unpriced_remote_model_is_refused_up_front(prices):
    from budgetflow import UnpricedModel

    with pytest.raises(UnpricedModel):
        LiteLLMModel("openai/some-private-finetune", prices=prices)
