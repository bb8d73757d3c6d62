"""The local engine path against the real vLLM server: exact usage, engine time, shrinking, refusals, scoring."""

from __future__ import annotations

import threading
import time

import pytest

from budgetflow import Budget, BudgetExceeded
from budgetflow.llm import LLMError

from ..conftest import PRICE_PER_CPU_SECOND

CODE = "def fibonacci(n):"
CHAT = [{"role": "user", "content": "Write a Python function that reverses a string."}]


def _ledger_totals(account):
    spent = account.spent()
    return spent.input_tokens, spent.output_tokens


@pytest.mark.parametrize("n, prompt, logprobs",
                         [(1, CODE, None), (8, CODE, None), (4, CODE, 0), (1, CHAT, 3), (8, CHAT, 2)])
def test_ledger_usage_equals_what_the_server_counted(engine, account, counters, n, prompt, logprobs):
    before = counters.read()
    gen = engine.generate(prompt, account=account, n=n, max_tokens=24, temperature=0.8, logprobs=logprobs)
    delta = counters.delta(before)
    inp, out = _ledger_totals(account)
    assert out == gen.usage.output_tokens == delta["generation"] > 0
    assert inp == gen.usage.input_tokens
    assert delta["prompt"] == n * inp  # vLLM counts the (shared) prompt once per sequence
    assert delta["requests"] == n  # one engine request per sequence: the native n>1 path, not n calls
    assert len(gen.completions) == n and all(c.finish_reason in ("stop", "length") for c in gen.completions)
    if logprobs is not None:  # every sampled token's logprob; `logprobs` alternatives each (0: none asked)
        assert sum(len(c.logprobs or []) for c in gen.completions) == gen.usage.output_tokens
        lp = gen.completions[0].logprobs
        assert lp and all(t.logprob <= 0 for t in lp) and (len(lp[0].top) >= 1 if logprobs else True)
    spent = account.spent()
    assert spent.calls == 1
    assert spent.cpu_seconds == pytest.approx(gen.usage.engine_seconds, abs=1e-6) and spent.cpu_seconds > 0
    assert spent.usd == pytest.approx(spent.cpu_seconds * PRICE_PER_CPU_SECOND, rel=1e-6)
    assert account.held().usd == 0


def test_16_concurrent_requests_are_each_metered_exactly(engine, account, counters):
    before = counters.read()
    results, errors = [], []
    start = time.monotonic()

    def call(i):
        try:
            results.append(engine.generate(f"# task {i}\n{CODE}", account=account, max_tokens=16, temperature=1.0))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    assert not errors, errors
    delta = counters.delta(before)
    inp, out = _ledger_totals(account)
    assert out == sum(g.usage.output_tokens for g in results) == delta["generation"]
    assert inp == sum(g.usage.input_tokens for g in results) == delta["prompt"]
    assert account.spent().calls == 16
    # the engine's busy time is shared, not multiplied: the 16 shares add up to no more than the wall time
    engine_seconds = account.spent().cpu_seconds
    assert 0 < engine_seconds <= wall * 1.02


def test_half_a_budget_yields_a_shorter_completion_not_an_error(engine, ledger):
    worst = engine._worst(engine.count_tokens(CODE), 1)
    acc = ledger.root("half", Budget(usd=worst(64)["usd"] / 2))
    gen = engine.generate(CODE, account=acc, max_tokens=128, temperature=0.0)
    assert gen.max_tokens < 64 and gen.requested_max_tokens == 128
    assert any("shrunk" in note for note in gen.notes)
    assert gen.usage.output_tokens <= gen.max_tokens
    assert acc.spent().usd <= acc.balance().budget.usd


def test_a_budget_that_affords_nothing_is_refused_before_any_request(engine, ledger, counters):
    acc = ledger.root("broke", Budget(usd=1e-7))
    before = counters.read()
    with pytest.raises(BudgetExceeded, match="broke needs"):
        engine.generate(CODE, account=acc, max_tokens=32)
    assert counters.delta(before) == {"prompt": 0, "generation": 0, "requests": 0}  # the server saw nothing
    assert [e.kind for e in ledger.entries(account="broke")] == ["open"]


def test_output_token_cap_shrinks_max_tokens(engine, ledger):
    acc = ledger.root("tokens", Budget(output_tokens=40))
    gen = engine.generate(CODE, account=acc, n=4, max_tokens=100, temperature=1.0)
    assert gen.max_tokens == 10 and acc.spent().output_tokens <= 40


def test_engine_time_cap_stops_a_call_that_outruns_its_estimate(engine, ledger):
    """With a deliberately low estimate, the call runs into the account's CPU-second cap mid-stream: the engine
    time meter stops it there (finish_reason 'budget') and the cap holds."""
    acc = ledger.root("cpu-capped", Budget(cpu_seconds=0.3))
    saved = engine.safety
    engine.safety = 0.02  # estimate ~50x too low, so the reservation is far smaller than the call needs
    try:
        gen = engine.generate(CODE, account=acc, max_tokens=400, temperature=0.0, min_tokens=1)
    finally:
        engine.safety = saved
    assert gen.completions[0].finish_reason == "budget"
    assert any("engine time ran out" in n for n in gen.notes)
    # issue 11 class 5: the cap holds because the call was stopped in time, not because the overshoot was dropped
    assert gen.usage.engine_seconds <= 0.3 and acc.spent().cpu_seconds <= 0.3 + 1e-9
    assert not ledger.overruns() and ledger.verify().ok


def test_score_returns_the_continuations_logprobs(engine, account):
    scored = engine.score("def add(a, b):\n    return", " a + b", account=account)
    assert "".join(t.token for t in scored.tokens).strip() == "a + b"
    assert scored.total < 0 and scored.mean < 0
    unlikely = engine.score("def add(a, b):\n    return", " banana", account=account)
    assert unlikely.mean < scored.mean
    assert account.spent().calls == 2 and account.spent().input_tokens > 0


def test_bad_requests_are_clear_errors_and_cost_nothing(engine, account):
    with pytest.raises(ValueError, match="n must be"):
        engine.generate(CODE, account=account, n=0)
    with pytest.raises(ValueError, match="top_p"):
        engine.generate(CODE, account=account, top_p=0)
    with pytest.raises(LLMError, match="context"):
        engine.generate("word " * 3000, account=account, max_tokens=8)
    assert account.spent().calls == 0 and account.held().usd == 0


def test_min_tokens_reaches_the_engine(engine, account):
    """A stop string cannot end a sequence before min_tokens (the step searches rely on it: a blank line is no
    step). It was used only to size the reservation and never sent."""
    gen = engine.generate("1\n2\n3\n", account=account, n=4, max_tokens=8, temperature=1.0, stop=["\n"],
                          min_tokens=3)
    assert gen.usage.output_tokens >= 4 * 3
