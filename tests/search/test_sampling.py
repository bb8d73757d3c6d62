"""Repeated sampling and cross-task allocation with the real SmolLM2 engine, sandbox and ledger."""

from __future__ import annotations

import secrets

from budgetflow import Budget
from budgetflow.search import (
    AllocationConfig,
    SamplingParams,
    allocate,
    best_of_n,
    sample_until_pass,
    wave_gain,
)
from budgetflow.tasks import CodeTask
from budgetflow.verifiers import UnitTestVerifier, program_for

EASY = CodeTask(
    id="add", entry_point="add",
    prompt='def add(a: int, b: int) -> int:\n    """Return the sum of a and b.\n    >>> add(1, 2)\n    3\n    """\n',
    visible_tests=("assert add(1, 2) == 3", "assert add(0, 0) == 0"),
    hidden_tests="assert add(5, 5) == 10\nraise SystemExit('hidden tests must never run during search')\n",
)
PARAMS = SamplingParams(max_tokens=48, temperature=1.0)


def impossible_task() -> CodeTask:
    token = secrets.token_hex(16)  # no model will guess it
    return CodeTask(id="secret", entry_point="secret",
                    prompt='def secret() -> str:\n    """Return the secret string."""\n',
                    visible_tests=(f"assert secret() == {token!r}",))


def test_early_stop_stops_on_a_pass_and_reports_spend(engine, sandbox, ledger):
    acct = ledger.root("run", Budget(usd=1.0)).child("add")
    verifier = UnitTestVerifier(sandbox)
    res = sample_until_pass(engine, EASY, verifier, account=acct, max_samples=4, params=PARAMS)
    assert res.reason in ("solved", "exhausted")
    if res.reason == "solved":
        assert res.best.passed_visible and 1 <= res.samples <= 4
        # the winner really passes the visible tests when checked again, independently
        again = verifier.run(program_for(EASY, res.best.text), EASY.visible_tests, account=ledger.root("check", Budget()))
        assert again.all_passed
    else:
        assert res.samples == 4 and not res.best.passed_visible
    # spend: the ledger's sub-accounts say where it went, and nothing was run on hidden tests
    assert res.spend["generate"].calls == res.samples  # one call per wave of one
    assert res.spend["verify"].calls == res.samples  # one sandbox run per sample, none for hidden tests
    assert res.spend["total"].usd == acct.spent().usd > 0
    assert res.spend["generate"].usd + res.spend["verify"].usd == res.spend["total"].usd


def test_best_of_n_draws_n_in_one_call(engine, sandbox, ledger):
    acct = ledger.root("bon", Budget(usd=1.0))
    res = best_of_n(engine, EASY, UnitTestVerifier(sandbox), account=acct, n=4, params=PARAMS)
    assert res.samples == 4 and res.spend["generate"].calls == 1 and res.spend["verify"].calls == 4
    assert res.best is not None and res.best.score == max(float(c) for c in [res.best.score])


def test_anytime_when_the_budget_runs_out(engine, sandbox, ledger):
    # a token cap: the engine reserves tokens exactly (a $ cap is priced by engine-seconds, which are estimated)
    cap = 100
    acct = ledger.root("poor", Budget(output_tokens=cap))
    res = sample_until_pass(engine, impossible_task(), UnitTestVerifier(sandbox), account=acct, max_samples=1000,
                            params=PARAMS)
    assert res.reason == "budget" and "budget" in res.notes[0]
    assert res.samples >= 2 and res.best is not None  # the best so far comes back
    assert acct.spent().output_tokens <= cap  # never exceeded


def test_allocation_stops_solved_cuts_hopeless_and_keeps_to_the_budget(engine, sandbox, ledger):
    cap = 0.2
    acct = ledger.root("batch", Budget(usd=cap))
    hopeless = impossible_task()
    cfg = AllocationConfig(wave_size=1, max_per_task=4, hopeless_after=3, revisit_cut=False)
    out = allocate(engine, [EASY, hopeless], UnitTestVerifier(sandbox), account=acct, config=cfg, params=PARAMS)
    by_id = {r.task_id: r for r in out.results}
    assert by_id["secret"].reason == "hopeless" and by_id["secret"].samples == 3  # cut, not sampled to the cap
    easy = by_id["add"]
    if easy.reason == "solved":  # stopped right after the solving wave
        assert easy.best.passed_visible and [w.task_id for w in out.waves].count("add") == easy.samples
    elif easy.reason == "hopeless":  # SmolLM2 can fail this too: cut only when nothing passed any visible test
        assert easy.samples == 3 and easy.best.score == 0
    else:
        assert easy.reason == "exhausted" and easy.samples == 4 and not easy.best.passed_visible
    assert out.reason == "done" and out.spend.usd <= cap
    assert sum(w.k for w in out.waves) == easy.samples + 3


def test_allocation_anytime_under_a_tight_budget(engine, sandbox, ledger):
    cap = 60
    acct = ledger.root("tight", Budget(output_tokens=cap))
    tasks = [impossible_task(), impossible_task().model_copy(update={"id": "secret2"})]
    out = allocate(engine, tasks, UnitTestVerifier(sandbox), account=acct,
                   config=AllocationConfig(max_per_task=50, hopeless_after=100), params=PARAMS)
    assert out.reason == "budget" and acct.spent().output_tokens <= cap
    assert {r.reason for r in out.results} == {"budget"}


def test_wave_gain_favours_low_but_nonzero_pass_rates():
    hopeless = wave_gain(0.1, 6.0, 1)
    low = wave_gain(1.0, 5.0, 1)
    assert low > hopeless
    assert abs(wave_gain(1.0, 1.0, 1) - 0.5) < 1e-9  # uniform prior: P(success) = 1/2
    assert wave_gain(1.0, 1.0, 4) > wave_gain(1.0, 1.0, 1)


def test_allocation_revisits_cut_tasks_only_when_nothing_promising_is_left(engine, sandbox, ledger):
    acct = ledger.root("revisit", Budget(output_tokens=2000))
    tasks = [impossible_task(), impossible_task().model_copy(update={"id": "secret2"})]
    cfg = AllocationConfig(wave_size=1, max_per_task=3, hopeless_after=2, revisit_cut=True)
    out = allocate(engine, tasks, UnitTestVerifier(sandbox), account=acct, config=cfg, params=PARAMS)
    assert out.reason == "done"
    assert [r.samples for r in out.results] == [3, 3] and {r.reason for r in out.results} == {"exhausted"}
    assert [w.gain for w in out.waves[-2:]] == [0.0, 0.0]  # the revisits come last, after both were cut
    assert all(w.gain > 0 for w in out.waves[:-2])
