"""Errors of the budget layer. Each message says what went wrong and what to do."""

from __future__ import annotations

from ._limits import format_amount


class BudgetError(Exception):
    """Base class of budget errors."""


class BudgetExceeded(BudgetError):
    """A reservation does not fit the remaining budget of an account (or one of its ancestors)."""

    def __init__(self, account: str, dimension: str, needed: int, left: int, cap: int):
        self.account = account
        self.dimension = dimension
        self.needed_units, self.left_units, self.cap_units = needed, left, cap
        super().__init__(
            f"BudgetExceeded: {account} needs ≥ {format_amount(dimension, needed)}, "
            f"{format_amount(dimension, max(left, 0))} left of {format_amount(dimension, cap)} ({dimension})"
        )


class ReservationClosed(BudgetError):
    """The reservation was already committed, released, or settled by recovery."""


class AccountMismatch(BudgetError):
    """An existing account was reopened with a different parent or budget."""


class LedgerMissing(BudgetError):
    """The URL names no ledger and creation was not asked for."""


class AccountMissing(LedgerMissing):
    """`Ledger.account(name)` reopens an account; this ledger has none of that name. Create roots with
    `Ledger.root(name, Budget(...))` and sub-accounts with `Account.child(name)`."""


class LedgerClosed(BudgetError):
    """The Ledger was closed: it holds no lease any more, so it may not reserve, settle or read."""


class UnpricedModel(BudgetError):
    """A model has no known price; budgetflow refuses to run it rather than spend blind."""
