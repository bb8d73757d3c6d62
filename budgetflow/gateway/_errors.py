"""Errors in OpenAI's shape ({"error": {"message", "type", "param", "code"}}), and which HTTP status each failure
gets. A budget refusal is HTTP 402 by default: the official `openai` client and LiteLLM do not retry it (they retry
429 and 5xx), so an exhausted key stops an agent at once instead of after minutes of backed-off retries."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from ..budget import Account, BudgetExceeded, format_usd

REFUSAL_STATUSES = (402, 403, 429)


def error_response(status: int, message: str, kind: str, *, param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code or kind}},
                        status_code=status, headers=headers)


def refusal_message(err: BudgetExceeded, account: Account) -> str:
    """'... $0.0003 left of $5 on team-a/agent-1': what is left in dollars on the key's own account, whichever account
    of the tree refused."""
    try:
        bal = account.balance()
        left = account.remaining().usd
        cap = bal.budget.usd
        money = f"{format_usd(max(left or 0.0, 0.0))} left of {format_usd(cap)} on {account.name}" if cap is not None \
            else f"{format_usd(max(left or 0.0, 0.0))} left on {account.name} (capped above it)"
    except Exception:  # the refusal itself must reach the client even when the balance cannot be read
        money = f"on {account.name}"
    return f"budget exceeded: the call's worst case does not fit ({err}); {money}. Nothing was sent to the model."
