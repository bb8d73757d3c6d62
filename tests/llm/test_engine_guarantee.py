"""The local engine's side of the guarantee (issue 11 classes 4, 5 and 8), against the real vLLM server."""

from __future__ import annotations

import time

import pytest

from budgetflow import Budget, BudgetExceeded, Ledger, PriceBook, UnpricedModel
from budgetflow.llm import VLLMEngine, get_llm

LONG = "def f(x):\n    return x\n" * 190  # ~1,900 prompt tokens: a prefill that sends nothing for a while


def _engine(smol_server, prices, tmp_path, **kw) -> VLLMEngine:
    return VLLMEngine("local/smollm2-135m", smol_server.base_url, "smollm2-135m", prices=prices,
                      server=smol_server, calibration_cache=tmp_path / "calibration", **kw)


# ---------------------------------------------------------------- class 4: a local engine costs money on every device


def test_the_default_local_price_binds_on_a_gpu(smol_server, tmp_path, ledger):
    """issue 11 class 4: on a GPU machine the engine is metered in GPU-seconds, but the default local price only
    priced CPU-hours, so every call cost $0 and the dollar cap never bound. The GPU path's pricing runs here on the
    CPU server with the device injected."""
    from budgetflow.runs._pricing import DEFAULT_LOCAL_GPU_HOUR, book_from, resolve_prices

    overrides, note = resolve_prices("local/smollm2-135m")
    assert "GPU-hour" in note
    eng = _engine(smol_server, book_from(overrides), tmp_path, device="gpu")
    acc = ledger.root("gpu-run", Budget(usd=1.0))
    gen = eng.generate("def add(a, b):", account=acc, max_tokens=16)
    spent = acc.spent()
    assert spent.gpu_seconds > 0 and spent.cpu_seconds == 0
    # both stored rounded up (micro-seconds, nano-dollars): equal to a few nano-dollars
    assert spent.usd == pytest.approx(spent.gpu_seconds * DEFAULT_LOCAL_GPU_HOUR / 3600, rel=1e-6, abs=5e-9)
    assert gen.usage.usd > 0
    tiny = ledger.root("gpu-tiny", Budget(usd=1e-7))
    with pytest.raises(BudgetExceeded, match="gpu-tiny needs"):
        eng.generate("def add(a, b):", account=tiny, max_tokens=16)
    eng.close()


def test_an_engine_on_an_unpriced_device_is_refused(smol_server, tmp_path):
    """issue 11 class 4: a price for one device only must not let the other run free."""
    prices = PriceBook()
    prices.set("local/smollm2-135m", cpu_hour=0.10)
    with pytest.raises(UnpricedModel, match="runs on the GPU.*no gpu_hour"):
        _engine(smol_server, prices, tmp_path, device="gpu")
    _engine(smol_server, prices, tmp_path, device="cpu").close()  # the priced device is fine


def test_user_cpu_price_gets_the_default_gpu_price_too():
    from budgetflow.runs._pricing import DEFAULT_LOCAL_GPU_HOUR, resolve_prices

    overrides, note = resolve_prices("local/smollm2-135m", cpu_hour=0.5)
    price = overrides["local/smollm2-135m"]
    assert price["cpu_second"] == pytest.approx(0.5 / 3600)
    assert price["gpu_second"] == pytest.approx(DEFAULT_LOCAL_GPU_HOUR / 3600)
    engine_note = note.split(";")[0]  # the rest is about sandbox CPU
    assert "GPU-hour" in engine_note and "CPU-hour" not in engine_note


# ---------------------------------------------------------------- class 5: stopped at the hold, never forgiven


def test_a_long_prefill_is_stopped_at_its_hold(engine, ledger):
    """issue 11 class 5: the engine-time check ran only between stream chunks, so a call that sent nothing (a long
    prefill) ran past its hold, and the overshoot was dropped with a note ("not charged")."""
    acc = ledger.root("prefill-capped", Budget(cpu_seconds=0.25))
    saved = engine.safety
    engine.safety = 0.001  # a reservation far below what the prefill needs
    try:
        start = time.monotonic()
        gen = engine.generate(LONG, account=acc, max_tokens=64, temperature=0.0)
        wall = time.monotonic() - start
    finally:
        engine.safety = saved
    assert gen.completions[0].finish_reason == "budget"
    assert not any("not charged" in n for n in gen.notes)
    assert gen.usage.engine_seconds <= 0.25 and acc.spent().cpu_seconds <= 0.25
    assert wall < 1.5  # stopped while the engine was still silent, not when its first token arrived
    assert not ledger.overruns() and ledger.verify().ok


def test_score_is_stopped_at_its_hold(engine, ledger):
    """issue 11 class 5: score() had no engine-time check during the call at all."""
    acc = ledger.root("score-capped", Budget(cpu_seconds=0.2))
    saved = engine.safety
    engine.safety = 0.001
    try:
        with pytest.raises(BudgetExceeded, match="score-capped"):
            engine.score(LONG, " x", account=acc)
    finally:
        engine.safety = saved
    assert acc.spent().cpu_seconds <= 0.2 and acc.spent().calls == 1
    assert not ledger.overruns() and ledger.verify().ok


def test_a_slow_call_extends_its_hold_when_the_budget_allows(engine, ledger):
    """The watchdog asks the ledger for more time before it cuts: an under-estimate with money left finishes."""
    acc = ledger.root("roomy", Budget(cpu_seconds=60))
    saved = engine.safety
    engine.safety = 0.01
    try:
        gen = engine.generate("def fibonacci(n):", account=acc, max_tokens=48, temperature=0.0)
    finally:
        engine.safety = saved
    assert gen.completions[0].finish_reason in ("stop", "length")
    kinds = [e.kind for e in ledger.entries(account="roomy")]
    assert "extend" in kinds and not ledger.overruns() and ledger.verify().ok


# ---------------------------------------------------------------- class 8: no engine work outside an account


def test_measuring_the_engine_is_charged_to_the_account_that_needs_it(smol_server, prices, counters, tmp_path):
    """issue 11 class 8: every engine object sent calibration requests charged to nobody, at construction."""
    before = counters.read()
    eng = _engine(smol_server, prices, tmp_path)
    assert counters.delta(before)["requests"] == 0  # constructing spends nothing
    with Ledger(tmp_path / "ledger.db") as ledger:
        acc = ledger.root("first-user", Budget(usd=1.0))
        gen = eng.generate("def add(a, b):", account=acc, max_tokens=8)
        delta = counters.delta(before)
        spent = acc.spent()
        # everything the server generated or read is on the account: the call and the measurement before it
        assert spent.output_tokens == delta["generation"] and spent.input_tokens * 1 >= delta["prompt"] - 8 * 2
        assert any("measured the engine's speed" in n for n in gen.notes)
        assert spent.calls == 1 + 5 and ledger.verify().ok
    again = _engine(smol_server, prices, tmp_path)  # same machine, model and engine: the measurement is reused
    before = counters.read()
    with Ledger(tmp_path / "ledger2.db") as ledger:
        gen = again.generate("def add(a, b):", account=ledger.root("second", Budget(usd=1.0)), max_tokens=8)
        assert counters.delta(before)["requests"] == 1 and not any("measured" in n for n in gen.notes)
    eng.close()
    again.close()


def test_get_llm_reuses_the_engine_of_a_served_model(smol_server, prices):
    """issue 11 class 8: get_llm("vllm/...") built (and calibrated) a new engine at every call."""
    name = f"vllm/smollm2-135m@{smol_server.base_url}"
    prices.set("vllm/smollm2-135m", cpu_second=0.001)
    assert get_llm(name, prices=prices) is get_llm(name, prices=prices)
