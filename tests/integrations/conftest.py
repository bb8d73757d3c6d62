"""Fixtures of the LangChain / LangGraph integration tests: the real vLLM servers (tests/conftest.py), a real SQLite
ledger, the server's own token counters as the independent truth."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core", reason="the LangChain integration needs budgetflow[langchain]")

from budgetflow import Budget  # noqa: E402

from ..llm.conftest import ServerCounters  # noqa: E402


@pytest.fixture
def account(ledger):
    return ledger.root("run", Budget(usd=5.0)).child("task")


@pytest.fixture(scope="session")
def counters(smol_server) -> ServerCounters:
    return ServerCounters(smol_server.root_url)


@pytest.fixture
def chat(engine, account):
    """BudgetedChatModel over the session's SmolLM2 engine, charging `account`."""
    from budgetflow.integrations.langchain import BudgetedChatModel

    return BudgetedChatModel(model="local/smollm2-135m", llm=engine, account=account, max_tokens=24)
