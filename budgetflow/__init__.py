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
from .llm import LLM, Generation, LLMError, get_llm
from .sandbox import ExecResult, Limits, Sandbox, SandboxError, SandboxUnavailable, get_sandbox

__version__ = "0.1.0"

__all__ = [
    "Account", "AccountBalance", "Amounts", "Budget", "BudgetError", "BudgetExceeded", "EntryView", "Ledger",
    "ModelPrice", "PriceBook", "Reservation", "UnpricedModel", "VerifyReport", "__version__",
    "LLM", "Generation", "LLMError", "get_llm",
    "ExecResult", "Limits", "Sandbox", "SandboxError", "SandboxUnavailable", "get_sandbox",
]
