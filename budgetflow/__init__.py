"""budgetflow: agentic, cost-controlled LLM workflows under a budget that is never exceeded."""

from .budget import (
    Account,
    AccountBalance,
    Amounts,
    Budget,
    BudgetError,
    BudgetExceeded,
    EntryView,
    Ledger,
    ModelPrice,
    PriceBook,
    Reservation,
    UnpricedModel,
    VerifyReport,
)

__version__ = "0.1.0"

__all__ = [
    "Account", "AccountBalance", "Amounts", "Budget", "BudgetError", "BudgetExceeded", "EntryView", "Ledger",
    "ModelPrice", "PriceBook", "Reservation", "UnpricedModel", "VerifyReport", "__version__",
]
