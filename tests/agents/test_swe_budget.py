"""The SWE graph's budget split, localisation, context fitting and regression-aware selection — each reproducing a
failure seen on real tasks: the tester spending the solver's money, whole files in the prompt, a prompt longer than
the model's context sent anyway, and a selected patch that broke tests which passed before. Real SmolLM2 engine
(served with a 2048-token context), real process sandbox, real SQLite ledgers, real git."""

from __future__ import annotations

from pathlib import Path

from budgetflow import Budget
from budgetflow.agents import (
    AgentConfig,
    AgentContext,
    AgentState,
    RepoVerifier,
    Selector,
    WorkingCopy,
    initial_state,
    solve,
)
from budgetflow.agents._trajectory import MIN_REPLY_TOKENS, Trajectory
from budgetflow.verifiers import RepoTestRunner
from budgetflow.workspace import repo_files

REPRO = "test_bf_repro_0.py"
REPRO_SRC = "from calc import add\n\n\ndef test_repro():\n    assert add(2, 3) == 5\n"


def _patch(task, *edits) -> dict:
    copy = WorkingCopy(repo_files(task.repo))
    for old, new in edits:
        copy.edit("calc.py", old, new)
    return {"text": copy.diff(), "meta": {"changed": copy.changed()}}


def test_a_candidate_that_breaks_a_passing_test_loses_the_selection(engine, sandbox, ledger, tiny_repo):
    """Hidden tests (as in SWE-bench): both candidates pass the reproduction test, the first also breaks
    test_double, which passes on the unchanged repository. It ranked first before; now it must lose."""
    hidden = tiny_repo.model_copy(update={"hidden_tests": True})
    account = ledger.root("regress", Budget(cpu_seconds=600))
    cands = [{"id": "c0", **_patch(hidden, ("return a - b", "return a + b"), ("return 2 * x", "return 3 * x"))},
             {"id": "c1", **_patch(hidden, ("return a - b", "return a + b"))}]
    state = AgentState.model_validate({**initial_state(hidden, account), "candidates": cands, "wave": 1,
                                       "wave_costs": [{}], "tests": [f"{REPRO}::test_repro"],
                                       "tests_source": "generated", "test_files": {REPRO: REPRO_SRC}})
    ctx = AgentContext(llm=engine, ledger=ledger, sandbox=sandbox, config=AgentConfig(max_waves=1))
    update = RepoVerifier(ctx)(state)
    assert update["regression_tests"] == ["test_calc.py::test_double"]  # what passes before any change
    v = update["verdicts"]
    assert v["c0"]["passed"] and v["c1"]["passed"]  # both pass the reproduction test
    assert v["c0"]["data"]["broken"] == ["test_calc.py::test_double"] and v["c1"]["data"]["broken"] == []
    state = AgentState.model_validate({**state.model_dump(), **update, "candidates": cands})
    chosen = Selector(ctx)(state)
    assert chosen["selected"] == "c1" and chosen["stop_reason"] == "solved"
    alone = AgentState.model_validate({**state.model_dump(), "candidates": cands[:1],
                                       "verdicts": {"c0": v["c0"]}})
    assert not alone.solved()  # a candidate that breaks a regression test never counts as solved
    assert any("breaks" in n for n in Selector(ctx)(alone)["notes"])


def _big_repo(tmp_path, tiny_repo, functions: int):
    """The tiny repo's bug inside a module far longer than the model's context."""
    import subprocess

    root = Path(tiny_repo.repo)
    filler = "".join(f"\n\ndef helper_{i}(values):\n    total = 0\n    for v in values:\n        total += v * {i}\n"
                     f"    return total\n" for i in range(functions))
    (root / "calc.py").write_text((root / "calc.py").read_text() + filler)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", str(root)]
    subprocess.run(git + ["commit", "-qam", "grow"], check=True)
    return tiny_repo


def test_no_prompt_longer_than_the_context_is_ever_sent(engine, sandbox, ledger, tiny_repo, tmp_path):
    """A module of ~9k tokens and a 2048-token context: the trajectory is shown the located function, every prompt
    it sends leaves room for a reply, and none is refused by the engine."""
    task = _big_repo(tmp_path, tiny_repo, 300)
    files = repo_files(task.repo)
    assert engine.count_tokens(files["calc.py"].decode()) > 3 * engine.max_model_len
    account = ledger.root("fit", Budget(usd=0.5))
    traj = Trajectory(engine, RepoTestRunner(sandbox), task, files, account=account, index=0,
                      config=AgentConfig(max_turns=3, attempts=1, turn_max_tokens=256), given=True,
                      failures="test_calc.py:5: in test_add\ncalc.py:3: in add\nE   assert -1 == 5")
    out = traj.run()
    assert out.stop != "model error", out.stopped
    assert out.located and out.located[0] == "calc.py::add"  # localised, not the whole file
    assert out.turns >= 1 and len(out.prompt_tokens) == out.turns
    assert all(p + MIN_REPLY_TOKENS <= engine.max_model_len for p in out.prompt_tokens), out.prompt_tokens
    assert account.spent().calls == out.turns + 1  # every sent prompt was answered (+1: the final test run)


def test_a_prompt_that_cannot_fit_is_refused_before_anything_is_sent(engine, sandbox, ledger, tiny_repo):
    """An issue text alone longer than the context: the trajectory stops with 'context', no call is billed."""
    long_issue = tiny_repo.model_copy(update={"issue": "add is wrong. " + "The numbers do not add up. " * 900})
    account = ledger.root("refuse", Budget(usd=0.5))
    out = Trajectory(engine, RepoTestRunner(sandbox), long_issue, repo_files(long_issue.repo), account=account,
                     index=0, config=AgentConfig(max_turns=2, attempts=1), given=True).run()
    assert out.stop == "context" and out.turns == 0 and out.prompt_tokens == []
    assert any("refused" in c for c in out.context)
    assert ledger.account("refuse").spent().output_tokens == 0  # refused here, not by the engine


def test_the_tester_gets_a_share_and_the_solver_the_rest(engine, sandbox, ledger, tiny_repo):
    """Hidden tests: the tester writes tests first. Its account is capped at its share of the task's cap, so it
    cannot spend what the solver needs (it took 20-65% before); every trajectory can afford its turns."""
    hidden = tiny_repo.model_copy(update={"hidden_tests": True})
    cap = 0.05
    cfg = AgentConfig(wave_size=2, max_waves=1, parallel=2, max_turns=1, attempts=1, turn_max_tokens=64,
                      tester_samples=4, tester_max_tokens=512)
    res = solve(hidden, model=engine, budget=cap, ledger=ledger, sandbox=sandbox, config=cfg)
    tester = ledger.account(f"{res.account}/tester")
    tester_cap = tester.balance().budget.usd
    assert tester_cap is not None and tester_cap <= cap * cfg.tester_share + 1e-9
    assert tester.spent().usd <= tester_cap
    trajs = [c for c in res.candidates if c.source.startswith("traj-")]
    assert len(trajs) == 2 and all(c.meta["turns"] >= 1 for c in trajs), [c.meta for c in trajs]
    for c in trajs:  # each trajectory's cap is a fair part of what the tester left, not what it happened to leave
        assert c.meta["cap"]["usd"] >= (cap - tester_cap) * (1 - cfg.verifier_share - cfg.selector_share) / 2 * 0.9
    assert res.spend["total"].usd <= cap and ledger.verify().ok
