"""Beam search, MCTS and A*-decoding over partial solutions, and the LLM judge, with the real SmolLM2 engine."""

from __future__ import annotations

import pytest

from budgetflow import Budget
from budgetflow.search import (
    StepConfig,
    StepSearch,
    astar,
    beam_search,
    expansion_budget,
    majority_of_n,
    mcts,
)
from budgetflow.tasks import CodeTask, MathTask
from budgetflow.verifiers import LogprobJudge, generate_tests

TASK = MathTask(id="toy", question="Tom has 3 apples and buys 4 more. How many apples does he have?", answer="7")
CFG = StepConfig(step_max_tokens=24, max_depth=4, max_children=3, max_expansions=6)


def test_expansion_budget_gives_doubtful_nodes_more_children():
    cfg = StepConfig(max_children=4, confidence=0.9)
    assert expansion_budget(0.95, cfg) == 1
    assert expansion_budget(0.5, cfg) == 4  # ceil(log 0.1 / log 0.5) = 4
    assert expansion_budget(0.01, cfg) == 4  # capped
    assert expansion_budget(0.6, cfg) < expansion_budget(0.4, cfg)


def test_expansion_makes_scored_children_and_charges_the_ledger(engine, ledger):
    acct = ledger.root("expand", Budget(output_tokens=2000))
    search = StepSearch(engine, TASK, acct, CFG)
    children = search.expand(search.root, k=3)
    assert 1 <= len(children) <= 3 and search.expansions == 1
    for c in children:
        assert 0 < c.value <= 1 and c.parent is search.root and len(c.steps) <= 1
        # the process score comes from real token log-probabilities (logprobs=0: no alternatives, still the tokens)
        assert c.tokens >= 2 and c.logprob < 0 and c.value < 1
    assert len({c.steps for c in children}) == len(children)  # distinct steps only
    assert acct.spent().calls == 1 and 0 < acct.spent().output_tokens <= 3 * CFG.step_max_tokens


@pytest.mark.parametrize("strategy", ["beam", "mcts", "astar"])
def test_tree_search_respects_expansion_cap_and_budget(engine, ledger, strategy):
    cap = 400
    acct = ledger.root(strategy, Budget(output_tokens=cap))
    run = {"beam": lambda: beam_search(engine, TASK, account=acct, width=2, cfg=CFG),
           "mcts": lambda: mcts(engine, TASK, account=acct, iterations=6, want_answers=2, cfg=CFG),
           "astar": lambda: astar(engine, TASK, account=acct, cfg=CFG)}[strategy]
    res = run()
    assert res.reason in ("finished", "exhausted", "budget")
    assert 1 <= res.expansions <= CFG.max_expansions
    assert res.spend["total"].output_tokens == acct.spent().output_tokens <= cap
    if res.reason == "finished":
        assert res.best is not None and res.best.text  # a finished path is returned


def test_tree_search_is_anytime_when_tokens_run_out(engine, ledger):
    cap = 12  # a few tokens: max_tokens is shrunk to what is left until nothing fits
    acct = ledger.root("tiny", Budget(output_tokens=cap))
    res = astar(engine, TASK, account=acct, cfg=CFG.model_copy(update={"max_expansions": 50, "max_depth": 50}))
    assert res.expansions >= 1 and acct.spent().output_tokens <= cap
    # out of budget, unless the model wrote a complete answer within 12 tokens
    assert res.reason == "budget" or (res.reason == "finished" and "answer is" in res.best.text.lower())


def test_majority_baseline_votes_over_samples(engine, ledger):
    acct = ledger.root("vote", Budget(output_tokens=300))
    res = majority_of_n(engine, TASK, account=acct, n=4, max_tokens=60)
    assert res.samples == 4 or res.reason == "budget"
    assert acct.spent().output_tokens <= 300


def test_judge_scores_with_the_models_own_probabilities(engine, ledger):
    acct = ledger.root("judge", Budget(usd=1.0))
    judge = LogprobJudge(engine)
    good = judge.verdict(TASK.question, "3 + 4 = 7\nThe answer is 7.", account=acct)
    assert 0 < good.p_yes < 1 and good.logprob_yes < 0 and good.logprob_no < 0
    assert acct.spent().calls == 2  # two prefills (Yes, No), each reserved and committed
    likely = judge.path_score("The capital of France is", " Paris.", account=acct)
    unlikely = judge.path_score("The capital of France is", " zebra toaster.", account=acct)
    assert likely > unlikely


def test_judge_as_process_score_in_beam_search(engine, ledger):
    acct = ledger.root("judged-beam", Budget(output_tokens=300, usd=1.0))
    cfg = CFG.model_copy(update={"score": "judge", "max_expansions": 2})
    res = beam_search(engine, TASK, account=acct, width=1, cfg=cfg)
    assert res.expansions <= 2
    assert acct.spent().calls > res.expansions  # generation calls plus judge prefills


def test_model_written_tests_are_parsed_and_charged(engine, ledger):
    acct = ledger.root("tester", Budget(output_tokens=400))
    task = CodeTask(id="sq", entry_point="square", prompt='def square(x: int) -> int:\n    """Return x squared."""\n')
    tests = generate_tests(engine, task, account=acct, n=3, max_tokens=60)
    assert all(t.startswith("assert ") and "square(" in t for t in tests)
    assert len(set(tests)) == len(tests)
    assert acct.spent().calls == 1 and 0 < acct.spent().output_tokens <= 180


def test_expansion_asks_for_fewer_whole_steps_when_tokens_run_low(ledger):
    # no model call: the check reads the account's headroom in the real ledger
    for cap, want in ((1000, 3), (50, 2), (30, 1), (5, 1)):
        acct = ledger.root(f"low-{cap}", Budget(output_tokens=cap))
        assert StepSearch(None, TASK, acct, CFG).affordable_children(3) == want  # CFG.step_max_tokens == 24
    parent = ledger.root("parent", Budget(output_tokens=30))
    child = parent.child("child", Budget(output_tokens=1000))
    assert StepSearch(None, TASK, child, CFG).affordable_children(3) == 1  # the tighter ancestor counts
    assert StepSearch(None, TASK, ledger.root("usd-only", Budget(usd=1.0)), CFG).affordable_children(3) == 3
