"""The verifier extension point: one Protocol, one verdict type, a registry.

A verifier judges a candidate for a task — a completion of a function, a numeric answer, a unified diff — from what
a solver may see (the task's public view), paying for its work on the account it is given. Unit tests in the
sandbox, a repository's tests, the model's own judgement and a vote across candidates all answer with a `Verdict`,
so search depends on this Protocol and never on a concrete class. A new verifier is one file:

    @verifier("my-check", kinds=("code",))
    class MyCheck:
        name = "my-check"
        def verify(self, task, candidate, *, account) -> Verdict: ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, Field

from .._registry import Registry
from ..budget import Account


class Verdict(BaseModel):
    """How a candidate did. `score` in [0, 1] orders candidates (fraction of tests passed, a probability, a vote
    share); `passed` says it cleared every check this verifier has."""

    passed: bool
    score: float = Field(ge=0.0, le=1.0)
    loaded: bool = True  # False: the candidate could not even be run or read (then it passed nothing)
    checks: int = 0  # how many checks ran (tests, votes)
    passed_checks: int = 0
    signature: list[bool] = Field(default_factory=list)  # per check, in order: for agreement between candidates
    detail: str = ""  # one line: why it failed, or what it found
    cpu_seconds: float = 0.0  # sandbox time it took (charged on the account given)
    killed_by: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)  # verifier-specific details (e.g. per-test errors)

    @property
    def fraction(self) -> float:
        return self.score


@runtime_checkable
class Verifier(Protocol):
    """Judges one candidate for one task (its public view) on `account`; raises BudgetExceeded, before doing
    anything, when the account cannot afford the check."""

    name: str

    def verify(self, task: Any, candidate: str, *, account: Account) -> Verdict: ...


def verify_all(verifier: Verifier, task: Any, candidates: Sequence[str], *, account: Account) -> list[Verdict]:
    """Verdicts for several candidates: the verifier's own `verify_all` when it judges them together (a vote), else
    one `verify` each."""
    together = getattr(verifier, "verify_all", None)
    if callable(together):
        return list(together(task, candidates, account=account))
    return [verifier.verify(task, c, account=account) for c in candidates]


verifiers: Registry[Callable[..., Verifier]] = Registry("verifier")
V = TypeVar("V")


def verifier(name: str, *, kinds: tuple[str, ...] = ()) -> Callable[[V], V]:
    """Register a verifier class (or factory) under `name`, for tasks of `kinds` (empty: any kind)."""
    return verifiers.register(name, kinds=tuple(kinds))
