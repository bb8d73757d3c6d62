"""The solver extension point: one Protocol, one Result, a registry, typed settings per solver.

A solver attempts one task (its public view) with the resources it is handed — the model, a verifier, the sandbox,
and the task's ledger account, which caps everything it spends — and returns a `Result`: the best candidate so far,
why it stopped, every candidate it tried, and its spend read back from the ledger. Search strategies, the agents'
graphs and the batch runner all speak this one shape. A new strategy is one file:

    class ToySettings(BaseModel):
        tries: int = 2

    @solver("toy", kinds=("code",), settings=ToySettings)
    class Toy:
        def __init__(self, settings: ToySettings):
            self.settings = settings
        def solve(self, task, resources: Resources) -> Result: ...

and then `budgetflow run ... --strategy toy` (with `--plugin FILE` when the file is outside budgetflow) finds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._registry import Registry
from ..budget import Account, Amounts
from ..llm import LLM
from ..sandbox import Sandbox
from ..verifiers import Verdict, Verifier

# solved: a candidate passed every check; finished: the strategy ran its course and answered (a vote, a search that
# reached its answers); exhausted: its own cap on samples or expansions was reached; budget: the money ran out (the
# best so far is the answer); hopeless: cut as unlikely to be solved; error: it failed
StopReason = Literal["solved", "finished", "exhausted", "budget", "hopeless", "error"]


class Candidate(BaseModel):
    """One thing a solver produced: a completion, a worked solution, a unified diff."""

    text: str
    score: float = 0.0  # the solver's own selection score (tests passed, votes, process score)
    passed_visible: bool = False  # passed every check the solver could run
    verdict: Verdict | None = None
    id: str = ""
    source: str = ""  # who made it: a wave, a trajectory, a search node
    meta: dict[str, Any] = Field(default_factory=dict)


class Result(BaseModel):
    """What every solver returns."""

    task_id: str
    reason: StopReason
    kind: str = ""  # the task's kind (code, math, repo, ...)
    best: Candidate | None = None
    answer: str | None = None  # what scoring takes: the best completion, final answer or diff (None: nothing)
    # how sure the solver is of `answer`, in [0, 1] (vote share, verifier pass rate, judge probability or mean token
    # probability — whichever it has); None: it has no estimate. Selective answering abstains below a threshold.
    confidence: float | None = Field(None, ge=0, le=1)
    candidates: list[Candidate] = Field(default_factory=list)
    samples: int = 0  # completions generated (or steps expanded)
    expansions: int = 0  # tree nodes expanded
    spend: dict[str, Amounts] = Field(default_factory=dict)  # "total" and by part, from the ledger
    account: str | None = None  # the ledger account it spent on
    notes: list[str] = Field(default_factory=list)
    log: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)  # solver-specific (the graph's selection, tests, ...)
    resumed: bool = False  # continued from a checkpoint

    @property
    def solved_visible(self) -> bool:
        return self.best is not None and self.best.passed_visible


@dataclass
class Resources:
    """What a solver may use. Everything it spends goes through `account` (and `verifier`'s own reservations)."""

    llm: LLM
    account: Account
    verifier: Verifier | None = None
    sandbox: Sandbox | None = None
    checkpoint: str | None = None  # a checkpoint file, for solvers that resume (the agents' graphs)
    sandbox_usd_per_cpu_second: float = 0.0  # what sandbox CPU costs, for solvers that build their own verifiers
    # another model by name, built lazily with the run's prices (a cascade stage naming a second model); None:
    # the solver falls back to get_llm with `llm`'s price book
    llm_for: Callable[[str], LLM] | None = None


@runtime_checkable
class Solver(Protocol):
    name: str

    def solve(self, task: Any, resources: Resources) -> Result: ...


class NoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


solvers: Registry[Callable[..., Solver]] = Registry("solver")
S = TypeVar("S")


def solver(name: str, *, kinds: tuple[str, ...], settings: type[BaseModel] = NoSettings,
           verifier: str | None = None, batch: bool = False) -> Callable[[S], S]:
    """Register a solver class under `name`: it handles tasks of `kinds`, is built as `cls(settings)` from a
    validated `settings` model, and is handed the verifier registered as `verifier` (None: the task kind's own)."""
    def add(cls: S) -> S:
        cls.name = name  # type: ignore[attr-defined]
        return solvers.register(name, kinds=tuple(kinds), settings=settings, verifier=verifier, batch=batch)(cls)
    return add


class SettingsError(ValueError):
    """A solver's settings do not validate; the message names the field and the solver."""


def solver_settings(name: str, values: BaseModel | Mapping[str, Any] | None = None, *,
                    partial: bool = False) -> BaseModel:
    """`values` validated against the solver's settings model (once, before anything runs). With `partial`, keys
    the model does not have are dropped (generic CLI flags that apply to some solvers only)."""
    model: type[BaseModel] = solvers.meta(name)["settings"]
    if isinstance(values, model):
        return values
    data = dict(values.model_dump() if isinstance(values, BaseModel) else values or {})
    if partial:
        data = {k: v for k, v in data.items() if k in model.model_fields}
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise SettingsError(f"solver {name!r}: setting {where!r}: {first['msg']}") from None


def make_solver(name: str, settings: BaseModel | Mapping[str, Any] | None = None) -> Solver:
    """The registered solver `name`, built with its settings validated."""
    return solvers.get(name)(solver_settings(name, settings))


def solver_names(kind: str | None = None) -> list[str]:
    """Registered solvers, those handling `kind` only if given."""
    return [n for n, _, meta in solvers.items() if kind is None or kind in meta["kinds"]]


def read_spend(account: Account) -> dict[str, Amounts]:
    return account.spend_by_part()
