"""Reserving a model call's worst case before dispatch — shrinking max_tokens to what the budget affords rather
than refusing — and the errors of the model layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..budget import Account, BudgetExceeded, Reservation
from ..budget import amounts_to_units

Worst = Callable[[int], dict[str, float]]  # max_tokens → worst-case amounts; non-decreasing in max_tokens


class LLMError(RuntimeError):
    """A model call failed; the ledger already holds what it cost (or that it cost nothing)."""


@dataclass
class CallPlan:
    max_tokens: int
    reservation: Reservation
    worst: dict[str, float]
    notes: list[str] = field(default_factory=list)


def _fits(amounts: dict[str, float], headroom: dict[str, int | None]) -> bool:
    return all(headroom.get(d) is None or u <= headroom[d] for d, u in amounts_to_units(amounts).items())


def affordable_max_tokens(account: Account, worst: Worst, requested: int, minimum: int) -> int | None:
    """The largest max_tokens in [minimum, requested] whose worst case fits every account above, or None."""
    headroom = account.headroom_units()
    if _fits(worst(requested), headroom):
        return requested
    if not _fits(worst(minimum), headroom):
        return None
    lo, hi = minimum, requested  # invariant: lo fits, hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _fits(worst(mid), headroom):
            lo = mid
        else:
            hi = mid
    return lo


def reserve_call(account: Account, worst: Worst, requested: int, minimum: int = 1, *, attempts: int = 4) -> CallPlan:
    """Reserve the call's worst case, shrinking max_tokens if the budget cannot afford `requested`.

    Raises BudgetExceeded (before anything is sent) when not even `minimum` tokens fit; the error names the account.
    """
    minimum = max(1, min(minimum, requested))
    for attempt in range(attempts):
        granted = affordable_max_tokens(account, worst, requested, minimum)
        amounts = worst(granted if granted is not None else minimum)
        try:
            # when nothing fits, this reservation fails and the ledger names the account and quantity that is short
            reservation = account.reserve(**amounts)
        except BudgetExceeded:
            if granted is None or attempt == attempts - 1:
                raise
            continue  # a concurrent call took budget since we planned: plan again
        granted = granted if granted is not None else minimum
        notes = []
        if granted < requested:
            notes.append(f"max_tokens shrunk from {requested} to {granted}: that is what the budget affords")
        return CallPlan(granted, reservation, amounts, notes)
    raise AssertionError("unreachable")
