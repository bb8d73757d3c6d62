"""Conditional edges. They read the state and the budget (the task account's headroom on the ledger) and never
write: the selector later says why the run stopped (see selector.stop_reason)."""

from __future__ import annotations

from collections.abc import Callable

from ._context import AgentContext, next_wave_estimate, short_of
from ._state import AgentState


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
