"""Adapters to other ecosystems, each in its own module because each needs its ecosystem installed:

- `budgetflow.integrations.langchain` — `BudgetedChatModel` (a LangChain chat model over any budgetflow model),
  `budget_node` (a child account per LangGraph node), `BudgetMiddleware` (for `langchain.agents.create_agent`):
  LangChain and LangGraph agents run under the ledger's guarantee. Install with `pip install 'budgetflow[langchain]'`.
"""

__all__: list[str] = []
