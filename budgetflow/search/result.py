"""What every strategy returns: the best candidate so far, why it stopped, and what it spent where."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..budget import Account, Amounts

# solved: a candidate passed the check; budget: the budget ran out (anytime answer); exhausted: the strategy's own
# sample/expansion cap was reached; hopeless: cut as unlikely to be solved; pool: a replay cache had no more samples
StopReason = str


class Candidate(BaseModel):
    text: str
    score: float = 0.0  # the strategy's own selection score (visible tests passed, votes, process score)
    passed_visible: bool = False
    meta: dict = Field(default_factory=dict)


class Spend(BaseModel):
    """Spend by kind: generation (model calls) vs verification (sandbox runs), and the total on the account."""

    generation: Amounts = Field(default_factory=Amounts)
    verification: Amounts = Field(default_factory=Amounts)
    total: Amounts = Field(default_factory=Amounts)


class SearchResult(BaseModel):
    task_id: str
    best: Candidate | None
    reason: StopReason
    samples: int = 0  # completions generated (or steps expanded)
    expansions: int = 0  # tree nodes expanded (step-level search)
    spend: Spend = Field(default_factory=Spend)
    notes: list[str] = Field(default_factory=list)

    @property
    def solved_visible(self) -> bool:
        return self.best is not None and self.best.passed_visible


class SpendTracker:
    """Sub-accounts `<name>/generate` and `<name>/verify` under the strategy's account, so the ledger itself says
    what was spent where."""

    def __init__(self, account: Account):
        self.account = account
        self.generate = account.child(f"{account.name}/generate")
        self.verify = account.child(f"{account.name}/verify")

    def spend(self) -> Spend:
        return Spend(generation=self.generate.spent(), verification=self.verify.spent(), total=self.account.spent())
