"""The graph state every agent node reads and updates.

Everything in it is plain JSON (strings, numbers, lists, dicts; pydantic models that dump to those), because the
LangGraph checkpointer stores it after every node: a run killed mid-graph resumes from it. Live objects (the model,
the ledger, the sandbox) are never in the state; accounts are named, and reopened by name on the ledger.
"""

from __future__ import annotations

import operator
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from ..verifiers import Verdict

TaskKind = Literal["code", "repo"]
TestsSource = Literal["given", "generated", "none"]



def merge_dicts(left: dict, right: dict) -> dict:
    """Reducer: a node's update adds or replaces keys, never removes them."""
    return {**(left or {}), **(right or {})}


class CandidateRecord(BaseModel):
    """One candidate: a completion of a function (code tasks) or a unified diff (repo tasks)."""

    id: str  # c0, c1, ... in the order produced
    text: str
    score: float = 0.0  # the producer's own score (visible-test pass fraction for code strategies)
    passed_visible: bool = False
    wave: int = 0
    source: str = "solver"  # which producer made it (e.g. traj-3)
    meta: dict = Field(default_factory=dict)


def counted_verdict(passed: int, total: int, *, loaded: bool = True, signature: list[bool] | None = None,
                    source: str = "verifier") -> Verdict:
    """The verifiers' one verdict type, from counts of tests passed. Passed: it loaded and passed every one of at
    least one test. `source`: verifier (run by the verifier node) | solver (the strategy's own check, reused)."""
    score = (passed / total if total else 1.0) if loaded else 0.0
    return Verdict(passed=loaded and total > 0 and passed == total, score=score, loaded=loaded, checks=total,
                   passed_checks=passed if loaded else 0, signature=list(signature or []), data={"source": source})


class AgentState(BaseModel):
    """State of one task's run through the graph."""

    kind: TaskKind
    task: dict  # the task, as JSON (CodeTask / RepoTask .model_dump(mode="json"))
    account: str  # the task's ledger account; agents spend on `<account>/<agent>`
    candidates: Annotated[list[CandidateRecord], operator.add] = Field(default_factory=list)
    tests: list[str] = Field(default_factory=list)  # asserts (code) or pytest node ids (repo)
    tests_source: TestsSource = "none"
    test_files: dict[str, str] = Field(default_factory=dict)  # repo tasks: generated test files, path -> source
    # repo tasks: tests that pass on the unchanged repository and must keep passing (the given pass_to_pass, else the
    # repository's own suite as it passes there); a candidate that breaks one loses the selection
    regression_tests: list[str] = Field(default_factory=list)
    failures: str = ""  # repo tasks: the failing tests' output on the unchanged repository (localisation evidence)
    metrics: Annotated[dict, merge_dicts] = Field(default_factory=dict)  # measurements by agent (see runs' report)
    verdicts: Annotated[dict[str, Verdict], merge_dicts] = Field(default_factory=dict)
    wave: int = 0  # solver waves finished
    wave_costs: list[dict[str, int]] = Field(default_factory=list)  # ledger units each wave spent (solve + verify)
    budget_hit: bool = False  # a node was refused by the budget (BudgetExceeded)
    selected: str | None = None  # candidate id
    selection: str | None = None  # how: tests | votes | llm | llm-fallback | none
    # why it ended: solved (a candidate passed every given test, or every generated one), exhausted (the wave cap was
    # reached), budget (the money ran low or out: the best candidate so far is returned)
    stop_reason: Literal["solved", "exhausted", "budget"] | None = None
    spend: dict[str, dict] = Field(default_factory=dict)  # account name -> committed amounts (natural units)
    notes: Annotated[list[str], operator.add] = Field(default_factory=list)

    def candidate(self, cid: str | None) -> CandidateRecord | None:
        return next((c for c in self.candidates if c.id == cid), None)

    def solved(self) -> bool:
        """A candidate passed every test we have: the given ones, or every generated one (agreement is then the
        best evidence there is). With no tests at all, a candidate that loads counts. A candidate that breaks a
        regression test (repo tasks) never counts."""
        kept = [v for v in self.verdicts.values() if not v.data.get("broken")]
        if self.tests_source == "none":
            return any(v.loaded for v in kept)
        return any(v.passed for v in kept)
