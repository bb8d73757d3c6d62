"""Task kinds: what a strategy needs to attempt a task, and — kept apart — what only the scorer may see.

Each kind is a schema registered under its name; the schema itself knows the task's id, its public view (what a
solver may see) and its default solver. `task_kinds` is the one place that knows which kinds exist: loaders,
runs and the CLI read it instead of switching on types. How a kind is *scored* needs verifiers, so it lives in the
verifiers package (`budgetflow.verifiers.score`), registered under the same name.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from .._registry import Registry
from ._environment import RepoEnvironment

task_kinds: Registry[type["Task"]] = Registry("task kind")
T = TypeVar("T", bound=type["Task"])


def task_kind(name: str):
    """Register a task schema as the kind `name` (the schema's `kind` class variable says the same)."""
    def add(cls: T) -> T:
        cls.kind = name
        return task_kinds.register(name)(cls)
    return add


class Task(BaseModel):
    """What every task kind offers."""

    model_config = ConfigDict(frozen=True)

    kind: ClassVar[str] = ""
    default_solver: ClassVar[str] = ""

    @property
    def task_id(self) -> str:
        raise NotImplementedError

    def public(self) -> "Task":
        """The same task without what only the scorer may see: what a solver is handed."""
        return self


def kind_of(task: Any) -> str:
    """The registered kind of a task object (TypeError naming the kinds for anything else)."""
    kind = getattr(type(task), "kind", "")
    if isinstance(task, Task) and kind in task_kinds:
        return kind
    raise TypeError(f"not a task: {type(task).__name__}; task kinds: {', '.join(task_kinds.names())}")


def task_from_dict(data: dict) -> Task:
    """A task from `{"kind": ..., "data": {...}}` (as `task_to_dict` writes it)."""
    return task_kinds.get(data["kind"]).model_validate(data["data"])


def task_to_dict(task: Task) -> dict:
    return {"kind": kind_of(task), "data": task.model_dump(mode="json")}


@task_kind("code")
class CodeTask(Task):
    """A function to complete. `visible_tests` may guide selection; `hidden_tests` are for final scoring only."""

    default_solver: ClassVar[str] = "sample"

    id: str
    prompt: str  # the code the model continues (signature + docstring)
    entry_point: str
    visible_tests: tuple[str, ...] = ()  # one assert per item, e.g. "assert f(1) == 2"
    hidden_tests: str = ""  # a test program (HumanEval's `check`), never shown to selection

    @property
    def task_id(self) -> str:
        return self.id

    def public(self) -> CodeTask:
        """The same task without hidden tests: what a search strategy is handed."""
        return self.model_copy(update={"hidden_tests": ""})


@task_kind("math")
class MathTask(Task):
    """A word problem with a numeric answer."""

    default_solver: ClassVar[str] = "majority"

    id: str
    question: str
    answer: str  # the expected final answer, normalised (e.g. "18"); empty in the public view

    @property
    def task_id(self) -> str:
        return self.id

    def public(self) -> MathTask:
        return self.model_copy(update={"answer": ""})


@task_kind("repo")
class RepoTask(Task):
    """An SWE-style task: a repository (a directory, usually a git checkout — never modified by budgetflow), an issue,
    a test command, the tests that must go from failing to passing and the ones that must keep passing.

    Test ids are pytest node ids relative to the repo root (e.g. "tests/test_gcd.py::test_gcd[1]")."""

    default_solver: ClassVar[str] = "graph"

    instance_id: str  # unique, SWE-bench style: "<project>__<name>"
    project: str  # where it comes from, e.g. "quixbugs", "more-itertools"
    repo: str  # path of the directory holding the code at the buggy state
    issue: str  # the problem statement the solver is given
    test_command: tuple[str, ...] = ("python3", "-m", "pytest", "-q", "-p", "no:cacheprovider")
    fail_to_pass: tuple[str, ...]  # must fail before the fix and pass after it
    pass_to_pass: tuple[str, ...] = ()  # must keep passing
    hidden_tests: bool = True  # whether fail_to_pass may be shown to the solver (False) or only to the scorer (True)
    # what the tests need installed (built once, cached): None runs them on the sandbox's own interpreter
    environment: RepoEnvironment | None = None

    @property
    def task_id(self) -> str:
        return self.instance_id

    @property
    def visible_tests(self) -> tuple[str, ...]:
        """The tests a solver may run: fail_to_pass and pass_to_pass unless they are hidden."""
        return () if self.hidden_tests else (*self.fail_to_pass, *self.pass_to_pass)
