"""Budgets, the ledger that never lets them be exceeded, and prices."""

from .account import Account, Reservation
from .audit import VerifyReport
from .errors import (
    AccountMismatch,
    AccountMissing,
    BudgetError,
    BudgetExceeded,
    LedgerClosed,
    LedgerMissing,
    ReservationClosed,
    UnpricedModel,
)
from .ledger import Ledger
from .limits import DIMENSIONS, Amounts, Budget
from .prices import ModelPrice, PriceBook
from .views import AccountBalance, EntryView, RecoveredReservation

__all__ = [
    "Account", "AccountBalance", "AccountMismatch", "AccountMissing", "Amounts", "Budget", "BudgetError", "BudgetExceeded",
    "DIMENSIONS", "EntryView", "Ledger", "LedgerClosed", "LedgerMissing", "ModelPrice", "PriceBook", "RecoveredReservation",
    "Reservation", "ReservationClosed", "UnpricedModel", "VerifyReport",
]
