"""What a run records per task (one line of results.jsonl), and what a worker hands back for a job."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..budget import Amounts


def amounts_dict(amounts: Amounts) -> dict[str, float | int]:
    """Amounts without the zero quantities (keeps result lines short)."""
    return {k: v for k, v in amounts.model_dump().items() if v}


class TaskRecord(BaseModel):
    """One finished task. `solved` is the hidden-test (scoring) verdict — never used for selection; None when the task
    has no hidden tests or nothing was selected to score."""

    id: str
    kind: str  # code | math | repo
    model: str
    strategy: str
    solved: bool | None
    solved_visible: bool | None = None  # passed the tests selection could see
    reason: str  # solved | exhausted | budget | hopeless | finished | error
    selected: str | None = None  # the selected candidate: completion (code), answer (math), patch (repo)
    confidence: float | None = None  # the solver's confidence in `selected`, in [0, 1] (None: no estimate)
    abstained: bool = False  # withheld by --abstain-below (`selected` is kept and scored, for the audit)
    samples: int = 0
    spend: dict[str, dict[str, float | int]] = Field(default_factory=dict)  # "total" and one entry per agent / kind
    scoring: dict = Field(default_factory=dict)  # the scoring account's spend and detail (not in the run's budget)
    account: str = ""  # the task's ledger account
    cap_usd: float | None = None  # the task account's cap when it ran
    wall_s: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    resumed: bool = False  # the task was in flight when an earlier attempt of the run was killed
    worker: str = ""
    notes: list[str] = Field(default_factory=list)
    # repo tasks: per-agent spend shares, prompt sizes, context shrinks and refusals, why each trajectory stopped
    metrics: dict = Field(default_factory=dict)
    error: str | None = None
    candidates_file: str = ""
    log_file: str = ""

    @property
    def usd(self) -> float:
        return self.spend.get("total", {}).get("usd", 0.0)


class TaskArtifacts(BaseModel):
    """What goes to the per-task files rather than to results.jsonl."""

    candidates: list[dict] = Field(default_factory=list)
    log: list[str] = Field(default_factory=list)


class JobResult(BaseModel):
    records: list[TaskRecord]
    artifacts: dict[str, TaskArtifacts] = Field(default_factory=dict)  # by task id
