"""Conditional edges, and how a task's budget is split between its agents. The edges read the state and the budget
(the task account's headroom on the ledger) and never write: the selector later says why the run stopped (see
selector.stop_reason).

The split ("When To Solve, When To Verify"): each agent spends on its own account, capped when it starts at a share
of what the task has left — the tester (model-written reproduction tests) at most ``tester_share``, each wave's
verification at most ``verifier_share`` (but enough for one test run), the selector's ``selector_share`` kept back —
and the solver's wave gets the rest, split between its trajectories. A wave after one whose trajectories were cut by
their caps before they made a patch runs half as many, each with twice the share (depth over breadth). So no agent
can spend the solver's money, and a refused tester or verifier ends only its own work, not the run."""

from __future__ import annotations

from collections.abc import Callable

from ..budget import Account, AccountMismatch, Budget
from ._context import AgentContext, next_wave_estimate, short_of
from ._state import AgentState


def share_of(headroom: dict[str, int | None], share: float, floor: dict[str, int] | None = None) -> Budget:
    """A cap of ``share`` of each capped quantity of ``headroom`` (at least ``floor``, at most the headroom)."""
    caps: dict[str, int | None] = {}
    for dim, units in headroom.items():
        if units is None:
            caps[dim] = None
        else:
            caps[dim] = min(units, max(int(units * share), (floor or {}).get(dim, 0)))
    return Budget.from_units(caps)


def capped_account(parent: Account, name: str, cap: Budget) -> Account:
    """``name`` under ``parent`` with ``cap`` — or, when it exists already (a resumed run), as it was created."""
    try:
        return parent.child(name, cap)
    except AccountMismatch:
        return parent.child(name)


def tester_cap(ctx: AgentContext, state: AgentState) -> Budget:
    """The tester's cap: its share of what the task has left."""
    return share_of(ctx.task_account(state).headroom_units(), ctx.config.tester_share)


def verifier_cap(ctx: AgentContext, state: AgentState, one_run: dict[str, int]) -> Budget:
    """One wave's verification cap: its share of what is left, and at least one test run's worst case."""
    return share_of(ctx.task_account(state).headroom_units(), ctx.config.verifier_share, floor=one_run)


def wave_plan(ctx: AgentContext, state: AgentState) -> tuple[int, Budget, str]:
    """(trajectories, each one's cap, why) for the next solver wave: what is left less the verifier's and the
    selector's shares, a fair part of it for this wave when more may follow, split evenly."""
    cfg = ctx.config
    headroom = ctx.task_account(state).headroom_units()
    waves_left = max(1, cfg.max_waves - state.wave)
    part = 1.0 if waves_left == 1 else max(0.5, 1.0 / waves_left)
    pool = max(0.0, 1.0 - cfg.verifier_share - cfg.selector_share) * part
    waves = state.metrics.get("waves", [])
    n, why = cfg.wave_size, f"{part:.0%} of the solver's part of what is left"
    if waves:
        last = waves[-1]
        n = last["trajectories"]
        if last.get("starved", 0) * 2 >= last["trajectories"] and n > 1:
            n = max(1, n // 2)
            why += f"; {last['starved']} of the last wave's trajectories ran out before a patch: fewer, deeper"
    return n, share_of(headroom, pool / n), why


def route_start(ctx: AgentContext) -> Callable[[AgentState], str]:
    """Skip the tester when the task gives its tests (or test writing is off)."""

    def route(state: AgentState) -> str:
        if state.tests_source == "given" or not ctx.config.generate_tests:
            return "solver"
        return "tester"

    return route


def route_after_tester(state: AgentState) -> str:
    return "selector" if state.budget_hit else "solver"


def route_after_solver(state: AgentState) -> str:
    """Verify whatever was drawn, even when the budget stopped the wave (the verifier may still afford it)."""
    return "verifier"


def affordable(ctx: AgentContext, state: AgentState) -> tuple[bool, str]:
    """Whether the task account can afford one more wave, estimated from the waves so far."""
    headroom = ctx.task_account(state).headroom_units()
    if any(h is not None and h <= 0 for h in headroom.values()):
        return False, "nothing left"
    need = next_wave_estimate(state)
    short = short_of(headroom, need)
    if short:
        return False, f"one more wave needs about {need[short[0]]} {short[0]} units, {headroom[short[0]]} left"
    return True, ""


def route_after_verifier(ctx: AgentContext) -> Callable[[AgentState], str]:
    """Keep sampling while nothing passed, the wave cap is not reached and the budget affords another wave."""

    def route(state: AgentState) -> str:
        if state.budget_hit or state.stop_reason or state.solved() or state.wave >= ctx.config.max_waves:
            return "selector"
        ok, _ = affordable(ctx, state)
        return "solver" if ok else "selector"

    return route
