"""The codegen graph with the real SmolLM2 engine, sandbox, SQLite ledger and LangGraph SqliteSaver."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest

from budgetflow import Budget, Ledger
from budgetflow.agents import (
    AgentConfig,
    AgentContext,
    AgentState,
    Selector,
    build_codegen_graph,
    counted_verdict,
    initial_state,
    solve,
    sqlite_checkpointer,
    thread_config,
)
from budgetflow.tasks import CodeTask
from budgetflow.verifiers import UnitTestVerifier, passes_hidden_tests

from .conftest import EASY, PARAMS, RESUME_BUDGET, RESUME_CONFIG

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def impossible_task() -> CodeTask:
    token = secrets.token_hex(16)  # no model will guess it
    return CodeTask(id="secret", entry_point="secret", prompt='def secret() -> str:\n    """The secret."""\n    return',
                    visible_tests=(f"assert secret() == {token!r}",))


def test_codegen_graph_solves_an_easy_task_and_skips_the_tester(engine, sandbox, ledger):
    cap = 0.5
    res = solve(EASY, model=engine, budget=cap, ledger=ledger, sandbox=sandbox,
                config=AgentConfig(wave_size=4, max_waves=2, params=PARAMS))
    assert res.reason == "solved" and res.details["selection"] == "tests" and res.solved_visible, res.notes
    assert res.details["program"].startswith(EASY.prompt)
    # the scorer's independent check (hidden tests, never seen during the run)
    assert passes_hidden_tests(UnitTestVerifier(sandbox), EASY, res.best.text, account=ledger.root("score", Budget()))
    # the tester never ran: the task gives its tests
    assert "tester" not in res.details["accounts"] and res.spend["tester"].calls == 0
    assert not any(n.startswith("tester") for n in res.notes)
    # the ledger says where the money went: one model call per sample, one sandbox run per sample
    n = len(res.candidates)
    assert res.details["accounts"]["solver/generate"].calls == n and res.details["accounts"]["solver/verify"].calls == n
    assert res.spend["verifier"].calls == 0  # the strategy's own checks were reused, not run again
    assert 0 < res.spend["total"].usd <= cap
    assert res.spend["total"] == ledger.account(res.account).spent()
    assert ledger.verify().ok


def test_the_tester_writes_tests_when_the_task_has_none(engine, sandbox, ledger):
    task = EASY.model_copy(update={"id": "add-untested", "visible_tests": ()})
    account = ledger.root("untested", Budget(usd=0.5)).child("untested/add")
    with sqlite_checkpointer(ledger.url.removeprefix("sqlite:///") + ".ckpt") as saver:
        graph = build_codegen_graph(engine, ledger=ledger, sandbox=sandbox, strategy="best_of_n", checkpointer=saver,
                                    config=AgentConfig(wave_size=3, max_waves=1, params=PARAMS, tester_samples=2,
                                                       tester_max_tokens=48))
        path = [next(iter(u)) for u in graph.stream(initial_state(task, account), thread_config("t-untested"),
                                                    stream_mode="updates")]
        final = AgentState.model_validate(graph.get_state(thread_config("t-untested")).values)
    assert path[:3] == ["tester", "solver", "verifier"] and path[-1] == "selector"
    tester = ledger.account("untested/add/tester").spent()
    assert tester.calls == 1 and tester.output_tokens > 0
    assert final.tests_source in ("generated", "none")
    if final.tests_source == "generated":  # what SmolLM2 wrote is valid asserts on add()
        assert final.tests and all(t.startswith("assert ") and "add(" in t for t in final.tests)
        assert final.selection in ("votes", "llm", "votes (llm-fallback)")
    assert len(final.candidates) == 3 and set(final.verdicts) == {"c0", "c1", "c2"}
    assert final.selected in final.verdicts and final.stop_reason in ("solved", "exhausted")


def test_a_budget_that_runs_out_ends_the_run_cleanly_with_the_best_so_far(engine, sandbox, ledger):
    cap = 100  # output tokens: reserved exactly (a $ cap is priced by engine-seconds, which are estimated)
    params = PARAMS.model_copy(update={"max_tokens": 24})
    res = solve(impossible_task(), model=engine, budget=Budget(output_tokens=cap), ledger=ledger, sandbox=sandbox,
                strategy="best_of_n", config=AgentConfig(wave_size=2, max_waves=100, params=params,
                                                         selection="tests"))
    assert res.reason == "budget", res.notes
    assert res.best is not None and len(res.candidates) >= 2  # anytime: the best candidate so far
    assert res.spend["total"].output_tokens <= cap
    assert ledger.account(res.details["thread_id"]).spent().output_tokens <= cap
    assert any("another wave" in n or "BudgetExceeded" in n for n in res.notes), res.notes
    assert ledger.verify().ok


def test_a_budget_too_small_for_any_call_returns_no_candidate_and_no_error(engine, sandbox, ledger):
    res = solve(EASY, model=engine, budget=1e-6, ledger=ledger, sandbox=sandbox, config=AgentConfig(params=PARAMS))
    assert res.reason == "budget" and res.best is None and res.answer is None
    assert res.spend["total"].usd == 0 and any("BudgetExceeded" in n for n in res.notes)


def test_the_selection_turn_asks_the_model_and_falls_back_to_the_ranking(engine, sandbox, ledger):
    task = EASY.model_copy(update={"visible_tests": ()})
    cands = [{"id": "c0", "text": " a - b\n"}, {"id": "c1", "text": " a + b\n"}, {"id": "c2", "text": " a + b\n"}]
    verdicts = {c["id"]: counted_verdict(0, 0).model_dump() for c in cands}

    def state(account: str) -> AgentState:
        return AgentState.model_validate({**initial_state(task, account), "candidates": cands,
                                          "verdicts": verdicts, "wave": 1})

    ctx = AgentContext(llm=engine, ledger=ledger, sandbox=sandbox,
                       config=AgentConfig(selection="llm", selection_max_tokens=8))
    rich = ledger.root("sel", Budget(usd=0.5))
    out = Selector(ctx)(state(rich.name))
    assert ledger.account("sel/selector").spent().calls == 1  # one selection turn, on the selector's account
    assert out["selected"] in ("c0", "c1") and out["selection"] in ("llm", "tests (llm-fallback)")
    assert out["stop_reason"] == "solved"  # no tests: a candidate that loads is all there is to check
    # the budget refuses the turn: the test ranking decides, and nothing fails
    poor = ledger.root("sel-poor", Budget(output_tokens=0))
    out = Selector(ctx)(state(poor.name))
    assert out["selected"] == "c0" and out["selection"] == "tests (llm-fallback)"
    assert any("budget" in n for n in out["notes"])


def test_a_killed_run_resumes_at_the_next_node_without_paying_again(engine, sandbox, tmp_path):
    db, ckpt, marker = tmp_path / "ledger.db", tmp_path / "ckpt.sqlite", tmp_path / "solver.done"
    thread = "resume-1"
    env = {**os.environ, "PYTHONPATH": REPO, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "agents", "resume_child.py"), str(db),
                              str(ckpt), thread, engine.base_url, str(marker)], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 150
        while not marker.exists():
            assert child.poll() is None, child.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the child never finished its solver node"
            time.sleep(0.2)
        os.kill(child.pid, signal.SIGKILL)  # mid-graph: the solver is done, the verifier has not started
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    seen = json.loads(marker.read_text())

    ledger = Ledger(db)  # the same ledger file; opening it settles what a dead owner left open
    try:
        solver = f"{thread}/{EASY.id}/solver"
        before = ledger.account(solver).spent()
        generate_entries = len(ledger.entries(f"{solver}/generate"))
        assert before.calls == seen["solver_calls"] > 0
        with sqlite_checkpointer(ckpt) as saver:  # the checkpoint says where the run stopped
            graph = build_codegen_graph(engine, ledger=ledger, checkpointer=saver)
            snapshot = graph.get_state(thread_config(thread))
            assert snapshot.next == ("verifier",) and len(snapshot.values["candidates"]) == seen["candidates"]

        res = solve(EASY, model=engine, budget=RESUME_BUDGET, ledger=ledger, sandbox=sandbox, checkpoint=ckpt,
                    thread_id=thread, strategy="best_of_n", config=RESUME_CONFIG)
        assert res.resumed and res.best is not None and res.reason in ("solved", "exhausted")
        after = ledger.account(solver).spent()
        assert after == before  # the finished solver node was not paid for again
        assert len(ledger.entries(f"{solver}/generate")) == generate_entries  # and no model call was made
        assert len(res.candidates) == seen["candidates"]
        assert sum(n.startswith("solver:") for n in res.notes) == 1  # its note came from the killed process
        assert sum(n.startswith("verifier:") for n in res.notes) == 1  # the resumed run went on from there
        # asking again returns the finished run from the checkpoint, spending nothing
        total = ledger.account(thread).spent()
        again = solve(EASY, model=engine, budget=RESUME_BUDGET, ledger=ledger, sandbox=sandbox, checkpoint=ckpt,
                      thread_id=thread, strategy="best_of_n", config=RESUME_CONFIG)
        assert again.resumed and again.best == res.best and ledger.account(thread).spent() == total
        assert ledger.verify().ok
    finally:
        ledger.close()


def test_a_checkpointed_thread_refuses_a_ledger_without_its_account(engine, sandbox, tmp_path):
    """issue 11 class 6: resuming a checkpointed solve() on another ledger (e.g. the default relative one, from
    another directory) re-created the run's account with the full cap."""
    ckpt = tmp_path / "ckpt.sqlite"
    first = solve(EASY, model=engine, budget=Budget(usd=0.02), checkpoint=ckpt, thread_id="t-1", sandbox=sandbox,
                  config=AgentConfig(wave_size=1, max_waves=1, params=PARAMS))
    assert (tmp_path / "ckpt.ledger.db").exists()  # by default the ledger lives beside the checkpoint
    again = solve(EASY, model=engine, budget=Budget(usd=0.02), checkpoint=ckpt, thread_id="t-1", sandbox=sandbox)
    assert again.resumed and again.spend["total"] == first.spend["total"]
    with pytest.raises(ValueError, match="has checkpoints .* has no account 't-1'"):
        solve(EASY, model=engine, budget=Budget(usd=0.02), checkpoint=ckpt, thread_id="t-1", sandbox=sandbox,
              ledger=tmp_path / "elsewhere.db")
