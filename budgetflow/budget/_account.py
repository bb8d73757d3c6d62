"""Accounts and reservations: the handles callers spend through."""

from __future__ import annotations

import threading
import warnings
from typing import TYPE_CHECKING

from ._errors import ReservationClosed
from ._limits import DIMENSIONS, Amounts, Budget, amounts_to_units

if TYPE_CHECKING:
    from ._ledger import Ledger
    from ._views import AccountBalance


class Account:
    """A node of the account tree (run → task → agent). Spending here also spends on every ancestor."""

    def __init__(self, ledger: "Ledger", account_id: int, name: str):
        self.ledger = ledger
        self.id = account_id
        self.name = name

    def __repr__(self) -> str:
        return f"Account({self.name!r})"

    def child(self, name: str, budget: Budget | None = None) -> "Account":
        """Create (or reopen) a sub-account whose spending also counts here. Without a budget it has no cap of its
        own; every ancestor's cap still binds it."""
        return self.ledger._child(self, name, budget)

    def reserve(self, **amounts: float) -> "Reservation":
        """Hold `amounts` (usd=, input_tokens=, output_tokens=, gpu_seconds=, cpu_seconds=, wall_seconds=, calls=)
        on this account and every ancestor at once, or raise BudgetExceeded naming the account that cannot afford it.
        """
        units = amounts_to_units(amounts)
        reservation_id = self.ledger._reserve(self, units)
        return Reservation(self, reservation_id, units)

    def balance(self) -> "AccountBalance":
        return self.ledger.balance(self.id)

    def spent(self) -> Amounts:
        """What has been charged (committed) on this account, including its sub-accounts."""
        return self.balance().committed

    def held(self) -> Amounts:
        """What is reserved but not yet settled."""
        return self.balance().reserved

    def spend_by_part(self) -> dict[str, Amounts]:
        """What this account spent, split by its direct sub-accounts (see views.SpendIndex)."""
        from ._views import SpendIndex

        return SpendIndex(self.ledger.accounts()).parts(self.name)

    def remaining(self) -> Budget:
        """What can still be reserved here: the tightest of this account's and its ancestors' headroom.
        None means no cap on that quantity anywhere above."""
        return Budget.from_units(self.headroom_units())

    def headroom_units(self) -> dict[str, int | None]:
        """`remaining()` in the ledger's integer units (exact, for planning a reservation)."""
        left: dict[str, int | None] = {d: None for d in DIMENSIONS}
        for bal in self.ledger.balances(self.ledger._chain(self.id).ids):  # one query for the whole chain
            for dim, headroom in bal.headroom_units().items():
                if headroom is not None:
                    left[dim] = headroom if left[dim] is None else min(left[dim], headroom)
        return {d: None if v is None else max(v, 0) for d, v in left.items()}


class Reservation:
    """Amounts held on an account until settled. Use as a context manager:

        with account.reserve(usd=0.01, calls=1) as r:
            ...  # do the work
            r.commit(usd=0.004, calls=1)

    Leaving the block unsettled (including by an exception) charges the full reservation: an unknown outcome is
    charged conservatively, never forgotten. Call `release()` only when the work surely never reached a provider.
    """

    def __init__(self, account: Account, reservation_id: str, units: dict[str, int]):
        self.account = account
        self.id = reservation_id
        self._units = units
        self.state = "open"
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Reservation({self.id[:8]} on {self.account.name!r}, {self.state})"

    @property
    def amounts(self) -> Amounts:
        return Amounts.from_units(self._units)

    def commit(self, **actual: float) -> Amounts:
        """Charge what the work really cost (unnamed quantities cost 0) and free the rest of the reservation.

        Never charges more than the reservation holds: what was billed beyond it (a reservation that was not a
        true worst case, or a provider that ignored its limit) is journalled as an `overrun` entry, which
        `Ledger.verify()` reports as a violation of the cap. Returns what was charged to the balances."""
        charged = amounts_to_units(actual)
        over = [d for d, u in charged.items() if u > self._units.get(d, 0)]
        if over:
            warnings.warn(
                f"{self.account.name}: charging more than was reserved in {', '.join(over)}; recorded as an overrun",
                RuntimeWarning,
                stacklevel=2,
            )
        self._settle("commit", charged)
        return Amounts.from_units({d: min(u, self._units.get(d, 0)) for d, u in charged.items()})

    def extend(self, **more: float) -> None:
        """Hold more on the same reservation (e.g. a call that needs more engine time than estimated), under the
        same cap checks as `reserve`: raises BudgetExceeded and leaves the reservation as it was if it cannot fit."""
        units = amounts_to_units(more)
        with self._lock:
            if self.state != "open":
                raise ReservationClosed(f"reservation {self.id} on {self.account.name!r} is already {self.state}")
            self.account.ledger._extend(self.account, self.id, self._units, units)
            for dim, u in units.items():
                self._units[dim] = self._units.get(dim, 0) + u

    def release(self) -> None:
        """Free the whole reservation: the work never reached a provider."""
        self._settle("release", {})

    def _settle(self, kind: str, charged: dict[str, int], note: str = "") -> None:
        with self._lock:
            if self.state != "open":
                raise ReservationClosed(f"reservation {self.id} on {self.account.name!r} is already {self.state}")
            ledger = self.account.ledger
            with ledger._write() as tx:
                ledger._settle(tx, self.id, self.account.id, self._units, charged, kind, note)
            self.state = {"commit": "committed", "release": "released"}[kind]

    def __enter__(self) -> "Reservation":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.state == "open":
            why = "an exception" if exc_type else "no commit"
            self._settle("commit", dict(self._units), note=f"left its context with {why}: charged as reserved")
