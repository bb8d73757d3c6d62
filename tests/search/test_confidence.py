"""`Result.confidence`: the arithmetic on hand-made verdicts and paths (exact numbers), and every solver family setting
it on real runs (SmolLM2 on vLLM, the process sandbox, a SQLite ledger): the vote share for majority, the test
evidence × agreement for sampling and the agents' graph, the value-weighted agreement of finished paths for the tree
searches."""

from __future__ import annotations

import pytest

from budgetflow import Budget
from budgetflow.agents import AgentState, CandidateRecord, counted_verdict, result_from_state
from budgetflow.search import (
    Node,
    StepSearch,
    beam_search,
    best_of_n,
    checked_confidence,
    majority_of_n,
    visible_test_evidence,
    vote_confidence,
)
from budgetflow.verifiers import Verdict, extract_answer
from tests.search.test_sampling import EASY, PARAMS, impossible_task
from tests.search.test_tree import CFG, TASK


def _verdict(passed: int, checks: int, loaded: bool = True) -> Verdict:
    return Verdict(passed=loaded and passed == checks, score=passed / checks if loaded else 0.0, loaded=loaded,
                   checks=checks, passed_checks=passed)


def test_checked_confidence_is_test_evidence_times_agreement():
    best = _verdict(3, 3)
    assert visible_test_evidence(best) == pytest.approx(0.8)  # (3 + 1) / (3 + 2)
    assert visible_test_evidence(_verdict(0, 3)) == pytest.approx(0.2)
    assert visible_test_evidence(_verdict(0, 3, loaded=False)) == 0.0
    # 2 of 4 checked candidates do as well as the selected one
    others = [best, _verdict(3, 3), _verdict(1, 3), _verdict(0, 3, loaded=False)]
    assert checked_confidence(best, others) == pytest.approx(0.8 * 0.5)
    assert checked_confidence(None, others) is None  # never checked: no estimate
    assert checked_confidence(best, others, answered=False) == 0.0
    assert vote_confidence(3, 8) == pytest.approx(0.375) and vote_confidence(0, 0) == 0.0


def _terminal(answer: str, value: float) -> Node:
    return Node(steps=(f"The answer is {answer}.",), value=value, terminal=True)


def test_path_confidence_weights_agreement_by_value():
    paths = [_terminal("7", 0.9), _terminal("7", 0.5), _terminal("8", 0.8)]
    assert StepSearch.path_confidence(paths, "7") == pytest.approx((0.9 + 0.5) / 3)
    assert StepSearch.path_confidence([_terminal("7", 0.6)], "7") == pytest.approx(0.6)  # one path: its value
    assert StepSearch.path_confidence(paths, None) == 0.0


def test_majority_confidence_is_the_vote_share_of_every_sample(engine, ledger):
    res = majority_of_n(engine, TASK, account=ledger.root("vote", Budget(output_tokens=400)), n=4, max_tokens=60)
    votes = res.details["votes"]
    assert res.samples >= 1 and sum(votes.values()) <= res.samples
    if res.answer is None:
        assert res.confidence == 0.0 and not votes
    else:
        assert res.confidence == pytest.approx(votes[res.answer] / res.samples)
        assert votes[res.answer] == max(votes.values())


def test_best_of_n_confidence_from_its_candidates_verdicts(engine, sandbox, ledger):
    from budgetflow.verifiers import UnitTestVerifier

    verifier = UnitTestVerifier(sandbox)
    res = best_of_n(engine, EASY, verifier, account=ledger.root("bon", Budget(usd=1.0)), n=4, params=PARAMS)
    best = res.best.verdict
    share = sum(1 for c in res.candidates if c.verdict.score >= best.score) / len(res.candidates)
    assert res.confidence == pytest.approx((best.passed_checks + 1) / (best.checks + 2) * share)
    hopeless = best_of_n(engine, impossible_task(), verifier, account=ledger.root("no", Budget(usd=1.0)), n=2,
                         params=PARAMS)
    assert hopeless.confidence <= 1 / 3 + 1e-9  # one visible test, never passed: (0 + 1) / (1 + 2) at most


def test_beam_confidence_is_in_range_and_follows_its_answer(engine, ledger):
    res = beam_search(engine, TASK, account=ledger.root("beam", Budget(output_tokens=400)), width=2, cfg=CFG)
    assert res.confidence is not None and 0.0 <= res.confidence <= 1.0
    if res.answer is None:
        assert res.confidence == 0.0
    else:  # a vote of finished paths (mean of value × agreement) or the best open path's value: never above it
        assert res.confidence <= res.best.score + 1e-9
        if res.reason == "finished":
            assert extract_answer(res.best.text) == res.answer and res.confidence > 0


def test_graph_result_confidence_uses_the_selected_candidates_verdict(ledger):
    acct = ledger.root("graph", Budget(usd=1.0))
    state = AgentState(kind="code", task={"id": "add"}, account=acct.name, tests_source="given", selected="c1",
                       candidates=[CandidateRecord(id=f"c{i}", text=f"x{i}") for i in range(3)],
                       verdicts={"c0": counted_verdict(1, 2), "c1": counted_verdict(2, 2), "c2": counted_verdict(2, 2)})
    res = result_from_state(state, acct)
    assert res.answer == "x1" and res.confidence == pytest.approx(3 / 4 * 2 / 3)
    empty = result_from_state(state.model_copy(update={"selected": None}), acct)
    assert empty.answer is None and empty.confidence == 0.0
