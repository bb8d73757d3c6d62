"""The SWE graph on a tiny real git repository, with the real SmolLM2 engine, sandbox and SQLite ledger.

SmolLM2-135M rarely follows the tool protocol, let alone fixes the bug: the model tests assert the mechanics (tools
run in the sandbox, spend per trajectory, the repository untouched, a diff and a predictions line). The verifier and
selector are also checked on hand-made patches, where the right answer is known."""

from __future__ import annotations

import json
from pathlib import Path

from budgetflow import Budget
from budgetflow.agents import (
    AgentConfig,
    AgentContext,
    AgentState,
    RepoTester,
    RepoVerifier,
    Selector,
    WorkingCopy,
    initial_state,
    route_after_verifier,
    solve,
    write_predictions,
)
from budgetflow.verifiers import RepoTestRunner
from budgetflow.workspace import repo_files, scoring_files, unified_diff

from .conftest import tree_digest


def test_swe_graph_runs_parallel_trajectories_with_tools_in_the_sandbox(engine, sandbox, ledger, tiny_repo,
                                                                        tmp_path):
    repo = Path(tiny_repo.repo)
    before = tree_digest(repo)
    cap = 0.5
    res = solve(tiny_repo, model=engine, budget=cap, ledger=ledger, sandbox=sandbox,
                config=AgentConfig(wave_size=2, max_waves=1, max_turns=1, attempts=2, turn_max_tokens=64,
                                   parallel=2))
    assert tree_digest(repo) == before  # the repository on disk never changed (.git included)
    assert res.kind == "repo" and res.details["tests_source"] == "given" and "tester" not in res.details["accounts"]  # tests given
    assert [c.source for c in res.candidates] == ["traj-0", "traj-1"]
    original = repo_files(repo)
    for cand in res.candidates:
        spent = res.details["accounts"][f"solver/{cand.source}"]  # each trajectory spends on its own account
        assert spent.calls >= 2 and spent.cpu_seconds > 0 and spent.usd > 0
        test = cand.meta["self_test"]  # every attempt ended with a test run in the sandbox
        assert test is not None and test["passed"] + test["failed"] == 2, cand.meta
        assert cand.meta["attempts"] == 2 or test["ok"] or cand.meta["stopped"]
        assert len(cand.meta["actions"]) == cand.meta["turns"]  # one parsed (or refused) action per turn
        edited = {**original, **{p: t.encode() for p, t in cand.meta["changed"].items() if t is not None}}
        assert cand.text == unified_diff(original, edited)  # the candidate is the diff of its working copy
    assert res.spend["solver"] == res.details["accounts"]["solver"]
    assert res.spend["total"].usd <= cap and ledger.verify().ok
    if res.best is not None:
        assert res.answer.startswith("diff --git")
    if res.reason == "solved":  # SmolLM2 fixed it: check it the way a scorer would
        fixed = {**original, **{p: t.encode() for p, t in res.best.meta["changed"].items()}}
        report = RepoTestRunner(sandbox).run(scoring_files(tiny_repo, fixed), tiny_repo,
                                             [*tiny_repo.fail_to_pass, *tiny_repo.pass_to_pass],
                                             account=ledger.root("score", Budget()))
        assert report.resolved(tiny_repo)
    path = write_predictions([res], tmp_path / "predictions.jsonl")
    (row,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert row == {"instance_id": "tiny__calc-1", "model_name_or_path": "local/smollm2-135m",
                   "model_patch": res.answer or ""}


def _patched(task, old: str, new: str) -> dict:
    copy = WorkingCopy(repo_files(task.repo))
    copy.edit("calc.py", old, new)
    return {"text": copy.diff(), "meta": {"changed": copy.changed()}}


def test_the_verifier_runs_each_patch_and_the_selector_picks_the_one_that_passes(engine, sandbox, ledger,
                                                                                  tiny_repo):
    account = ledger.root("patches", Budget(cpu_seconds=600))
    cands = [{"id": "c0", **_patched(tiny_repo, "return a - b", "return a * b")},  # still wrong
             {"id": "c1", "text": "", "meta": {}},  # a trajectory that changed nothing
             {"id": "c2", **_patched(tiny_repo, "return a - b", "return a + b")},  # the fix
             {"id": "c3", **_patched(tiny_repo, "return a - b", "return a + b")}]  # the same fix again
    state = AgentState.model_validate({**initial_state(tiny_repo, account), "candidates": cands, "wave": 1,
                                       "wave_costs": [{}]})
    ctx = AgentContext(llm=engine, ledger=ledger, sandbox=sandbox, config=AgentConfig(max_waves=3))
    update = RepoVerifier(ctx)(state)
    v = update["verdicts"]
    assert v["c0"]["signature"] == [False, True] and v["c2"]["signature"] == [True, True] == v["c3"]["signature"]
    assert v["c1"]["loaded"] is False  # an empty patch is not run
    assert ledger.account("patches/verifier").spent().calls == 2  # one run per distinct patch
    assert update["wave_costs"][0]["cpu_seconds"] > 0  # the wave's cost includes its verification
    state = AgentState.model_validate({**state.model_dump(), **update, "candidates": cands,
                                       "notes": update["notes"]})
    assert state.solved() and route_after_verifier(ctx)(state) == "selector"
    chosen = Selector(ctx)(state)
    assert chosen["selected"] == "c2" and chosen["selection"] == "tests" and chosen["stop_reason"] == "solved"
    assert "patches/selector" not in chosen["spend"]  # no tie between distinct patches: no selection turn


def test_the_repo_tester_keeps_only_tests_that_fail_on_the_unchanged_repo(engine, sandbox, ledger, tiny_repo):
    hidden = tiny_repo.model_copy(update={"hidden_tests": True})
    account = ledger.root("repro", Budget(usd=0.5))
    state = AgentState.model_validate(initial_state(hidden, account))
    assert state.tests_source == "none" and state.tests == []  # hidden tests are never shown to the agents
    ctx = AgentContext(llm=engine, ledger=ledger, sandbox=sandbox,
                       config=AgentConfig(tester_samples=2, tester_max_tokens=96))
    update = RepoTester(ctx)(state)
    spent = ledger.account("repro/tester").spent()
    assert spent.output_tokens > 0 and 1 <= spent.calls <= 2  # one model call (+ one sandbox run if it wrote tests)
    assert update["tests_source"] in ("generated", "none")
    if update["tests_source"] == "generated":  # every kept test really fails on the unchanged repository
        files = {**repo_files(hidden.repo), **{p: s.encode() for p, s in update["test_files"].items()}}
        report = RepoTestRunner(sandbox).run(files, hidden, update["tests"], account=account)
        assert set(update["tests"]) <= report.failed
        assert all(t.startswith("test_bf_repro_") for t in update["tests"])


def test_a_swe_run_the_budget_cannot_afford_ends_cleanly(engine, sandbox, ledger, tiny_repo, tmp_path):
    res = solve(tiny_repo, model=engine, budget=1e-6, ledger=ledger, sandbox=sandbox,
                config=AgentConfig(wave_size=2, parallel=2, max_turns=1, attempts=1))
    assert res.reason == "budget" and res.best is None and res.answer is None
    assert all(c.meta["stopped"].startswith("budget") for c in res.candidates)
    assert ledger.account(res.details["thread_id"]).spent().usd == 0  # refused before anything was sent
    path = write_predictions([res], tmp_path / "p.jsonl")
    assert json.loads(path.read_text())["model_patch"] == ""
