"""The cascade solver with the real SmolLM2 engine, sandbox and SQLite ledger: it escalates only on failure, each
stage's spend is on its own account and they add up to the task's, and a budget cut answers with the best so far."""

from __future__ import annotations

import pytest

from budgetflow import Budget
from budgetflow.search import CascadeSettings, Resources, make_solver
from budgetflow.tasks import CodeTask
from budgetflow.verifiers import UnitTestVerifier
from tests.search.test_sampling import impossible_task

# SmolLM2-135M completes ` a + b` here (greedy): the first stage passes
ADD = CodeTask(id="add", entry_point="add",
               prompt='def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n    return',
               visible_tests=("assert add(1, 2) == 3", "assert add(0, 0) == 0"),
               hidden_tests="raise SystemExit('hidden tests must never run during search')\n")


def solve(engine, sandbox, task, account, stages: str, **settings):
    solver = make_solver("cascade", {"stages": stages, "max_tokens": 32, **settings})
    return solver.solve(task, Resources(llm=engine, account=account, verifier=UnitTestVerifier(sandbox)))


def stage_accounts(ledger, account) -> dict[str, float]:
    prefix = account.name + "/stage"
    return {b.name.removeprefix(account.name + "/"): b.committed.usd for b in ledger.accounts()
            if b.name.startswith(prefix) and "/" not in b.name.removeprefix(account.name + "/")}


def test_a_passing_first_stage_spends_nothing_on_later_stages(engine, sandbox, ledger):
    acct = ledger.root("cascade", Budget(usd=1.0))
    res = solve(engine, sandbox, ADD, acct, "T0x1,T1x3,T1x3")
    cascade = res.details["cascade"]
    assert cascade["solved_by"] == 1 and res.reason == "solved" and res.samples == 1
    assert [r["stage"] for r in cascade["stages"]] == [1]
    # the ledger: stage 1 paid for everything, the later stages never even got an account
    assert stage_accounts(ledger, acct) == {"stage1": pytest.approx(acct.spent().usd, abs=1e-9)}
    assert set(res.spend) == {"total", "stage1"} and res.spend["stage1"].calls == 2  # one call, one sandbox run
    # the code solvers' one rule: the selected candidate's visible-test evidence (k+1)/(n+2) x agreement (1 of 1)
    v = res.best.verdict
    assert v.passed and res.confidence == pytest.approx((v.passed_checks + 1) / (v.checks + 2))
    assert res.best.meta["stage"] == 1


def test_escalates_through_every_stage_on_failure_and_stage_spend_adds_up(engine, sandbox, ledger):
    acct = ledger.root("cascade", Budget(usd=1.0))
    res = solve(engine, sandbox, impossible_task(), acct, "T0x1,T1x2w1,T1x2")
    cascade = res.details["cascade"]
    assert res.reason == "exhausted" and cascade["solved_by"] is None and res.samples == 5
    assert [(r["stage"], r["samples"], r["passed"]) for r in cascade["stages"]] == [(1, 1, False), (2, 2, False),
                                                                                     (3, 2, False)]
    by_stage = stage_accounts(ledger, acct)
    assert set(by_stage) == {"stage1", "stage2", "stage3"} and all(v > 0 for v in by_stage.values())
    # each stage's row is its account's spend, and the stages are all the task spent
    for row in cascade["stages"]:
        assert row["usd"] == pytest.approx(by_stage[f"stage{row['stage']}"], abs=1e-9)
    assert sum(by_stage.values()) == pytest.approx(acct.spent().usd, abs=1e-9)
    assert res.spend["total"].usd == pytest.approx(acct.spent().usd, abs=1e-9)
    # waves: stage 2 drew one sample per call, stage 3 both in one call (+ one sandbox run per sample)
    assert res.spend["stage2"].calls == 2 + 2 and res.spend["stage3"].calls == 1 + 2
    assert res.confidence is not None and res.confidence < 1.0


def test_run_all_measures_every_stage_and_order_runs_a_subset(engine, sandbox, ledger):
    acct = ledger.root("calibrate", Budget(usd=1.0))
    res = solve(engine, sandbox, ADD, acct, "T0x1,T1x2", run_all=True)
    cascade = res.details["cascade"]
    assert cascade["mode"] == "calibrate" and cascade["solved_by"] == 1
    assert [r["stage"] for r in cascade["stages"]] == [1, 2] and set(stage_accounts(ledger, acct)) == {"stage1",
                                                                                                       "stage2"}
    assert res.best.meta["stage"] == 1  # a tie in score keeps the earlier stage's candidate
    acct2 = ledger.root("ordered", Budget(usd=1.0))
    res = solve(engine, sandbox, impossible_task(), acct2, "T0x1,T1x1,T1x2", order=[3, 1])
    assert [r["stage"] for r in res.details["cascade"]["stages"]] == [3, 1]
    assert set(stage_accounts(ledger, acct2)) == {"stage1", "stage3"}


def test_a_budget_cut_mid_stage_answers_with_the_best_so_far_within_the_cap(engine, sandbox, ledger):
    cap = 100  # output tokens: the engine reserves them exactly
    acct = ledger.root("poor", Budget(output_tokens=cap))
    res = solve(engine, sandbox, impossible_task(), acct, "T0x1,T1x50w1,T1x4")
    cascade = res.details["cascade"]
    assert res.reason == "budget" and res.best is not None and res.answer == res.best.text
    assert cascade["stages"][-1]["stage"] == 2 and cascade["stages"][-1]["stopped"]  # stage 3 never started
    assert 1 <= cascade["stages"][-1]["samples"] < 50
    assert acct.spent().output_tokens <= cap and "budget" in res.notes[0]


def test_a_stage_naming_another_model_gets_it_from_the_run(engine, sandbox, ledger):
    asked: list[str] = []

    def llm_for(name: str):
        asked.append(name)
        return engine  # the run builds it with its prices; here the same real engine stands in for it

    solver = make_solver("cascade", {"stages": "T0x1,other/model:T1x1", "max_tokens": 16})
    res = solver.solve(impossible_task(), Resources(llm=engine, account=ledger.root("two", Budget(usd=1.0)),
                                                    verifier=UnitTestVerifier(sandbox), llm_for=llm_for))
    assert asked == ["other/model"] and res.details["cascade"]["stages"][1]["config"] == "other/model:T1x1"


def test_settings_refuse_what_cannot_run():
    with pytest.raises(ValueError, match="greedy decoding"):
        CascadeSettings(stages="T0x3")
    with pytest.raises(ValueError, match=r"stage 2 'T1': expected \[MODEL:\]T<temperature>x<samples>"):
        CascadeSettings(stages="T0x1,T1")
    with pytest.raises(ValueError, match="distinct stage numbers"):
        CascadeSettings(stages="T0x1,T1x2", order=[2, 2])
    with pytest.raises(ValueError, match="give 1 to 6 stages"):
        CascadeSettings(stages=",".join(["T1x1"] * 7))
    s = CascadeSettings(stages="T0x1, model=local/qwen2.5-coder-1.5b:T0.8x4w2m256")
    assert [x.label() for x in s.stages] == ["T0x1", "local/qwen2.5-coder-1.5b:T0.8x4w2m256"]
    assert CascadeSettings(stages=[{"temperature": 1, "samples": 2}]).stages[0].label() == "T1x2"
