"""What nodes share that cannot live in the state: the model, the ledger, the sandbox, the settings."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from ..budget import Account, BudgetExceeded, Ledger
from ..llm import LLM
from ..sandbox import Sandbox
from ..verifiers import RepoTestRunner, UnitTestVerifier
from ._config import AgentConfig
from ._state import AgentState

AGENTS = ("tester", "solver", "verifier", "selector")


@dataclass
class AgentContext:
    llm: LLM
    ledger: Ledger
    config: AgentConfig = field(default_factory=AgentConfig)
    sandbox: Sandbox | None = None
    _verifier: UnitTestVerifier | None = None
    _runner: RepoTestRunner | None = None

    @property
    def verifier(self) -> UnitTestVerifier:
        """Runs code candidates against asserts (code tasks)."""
        if self._verifier is None:
            self._verifier = UnitTestVerifier(self.sandbox, usd_per_cpu_second=self.config.usd_per_cpu_second)
            self.sandbox = self._verifier.sandbox
        return self._verifier

    @property
    def runner(self) -> RepoTestRunner:
        """Runs a repository's tests on a working copy (repo tasks)."""
        if self._runner is None:
            self._runner = RepoTestRunner(self.sandbox, usd_per_cpu_second=self.config.usd_per_cpu_second)
            self.sandbox = self._runner.sandbox
        return self._runner

    def task_account(self, state: AgentState) -> Account:
        return self.ledger.account(state.account)

    def agent_account(self, state: AgentState, agent: str) -> Account:
        """`<task account>/<agent>`: what the agent spends also counts on the task and everything above it."""
        return self.task_account(state).child(f"{state.account}/{agent}")


def spent_units(account: Account) -> dict[str, int]:
    return dict(account.balance().committed_units)


def units_delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {d: after[d] - before.get(d, 0) for d in after if after[d] - before.get(d, 0)}


def add_units(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {d: a.get(d, 0) + b.get(d, 0) for d in set(a) | set(b)}


def next_wave_estimate(state: AgentState) -> dict[str, int]:
    """What one more wave will likely cost, per quantity: the mean of the waves so far."""
    if not state.wave_costs:
        return {}
    dims = set().union(*state.wave_costs)
    return {d: -(-sum(w.get(d, 0) for w in state.wave_costs) // len(state.wave_costs)) for d in dims}


def short_of(headroom: dict[str, int | None], need: dict[str, int]) -> list[str]:
    """The capped quantities whose headroom is less than `need`."""
    return [d for d, u in need.items() if headroom.get(d) is not None and headroom[d] < u]


def anytime(node: str) -> Callable:
    """Wrap a node so that a budget refusal ends its work cleanly: what it had is kept, and the graph goes to the
    selector, which returns the best candidate so far with reason "budget"."""

    def wrap(fn: Callable[..., dict]) -> Callable[..., dict]:
        @functools.wraps(fn)
        def run(self, state: AgentState) -> dict:
            try:
                return fn(self, state)
            except BudgetExceeded as err:
                return {"budget_hit": True, "stop_reason": "budget", "notes": [f"{node}: {err}"]}

        return run

    return wrap
