"""Budgets, the ledger that never lets them be exceeded, and prices."""

from ._account import Account, Reservation
from ._audit import VerifyReport
from ._errors import (
    AccountMismatch,
    AccountMissing,
    BudgetError,
    BudgetExceeded,
    LedgerClosed,
    LedgerMissing,
    ReservationClosed,
    UnpricedModel,
)
from ._keys import ApiKey, KeyRefused, authenticate, create_key, list_keys, revoke_key
from ._ledger import Ledger
from ._engine import resolve_url
from ._limits import DIMENSIONS, Amounts, Budget, amounts_to_units, format_amount, format_usd, from_units, to_units
from ._prices import SANDBOX_CPU, ModelPrice, PriceBook
from ._views import AccountBalance, EntryView, RecoveredReservation, SpendIndex, usd_share

__all__ = [
    "Account", "AccountBalance", "ApiKey", "KeyRefused", "authenticate", "create_key", "list_keys", "revoke_key", "AccountMismatch", "AccountMissing", "Amounts", "Budget", "BudgetError", "BudgetExceeded",
    "DIMENSIONS", "SANDBOX_CPU", "amounts_to_units", "format_amount", "format_usd", "from_units", "resolve_url", "to_units", "EntryView", "Ledger", "LedgerClosed", "LedgerMissing", "ModelPrice", "PriceBook", "RecoveredReservation",
    "Reservation", "ReservationClosed", "SpendIndex", "UnpricedModel", "VerifyReport", "usd_share",
]
