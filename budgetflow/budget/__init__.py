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
from .engine import resolve_url
from .limits import DIMENSIONS, Amounts, Budget, amounts_to_units, format_amount, format_usd, from_units, to_units
from .prices import SANDBOX_CPU, ModelPrice, PriceBook
from .views import AccountBalance, EntryView, RecoveredReservation, SpendIndex, usd_share

__all__ = [
    "Account", "AccountBalance", "AccountMismatch", "AccountMissing", "Amounts", "Budget", "BudgetError", "BudgetExceeded",
    "DIMENSIONS", "SANDBOX_CPU", "amounts_to_units", "format_amount", "format_usd", "from_units", "resolve_url", "to_units", "EntryView", "Ledger", "LedgerClosed", "LedgerMissing", "ModelPrice", "PriceBook", "RecoveredReservation",
    "Reservation", "ReservationClosed", "SpendIndex", "UnpricedModel", "VerifyReport", "usd_share",
]
