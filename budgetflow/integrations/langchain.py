"""LangChain and LangGraph agents under the ledger (`pip install 'budgetflow[langchain]'`).

- `BudgetedChatModel(model="local/qwen2.5-coder-1.5b", account=...)`: a LangChain chat model over any budgetflow
  model; hand it to `create_react_agent`, `create_agent` or your own graph. invoke/ainvoke/stream/astream/batch,
  bind_tools, with_structured_output; usage_metadata is the metered usage, response_metadata["budgetflow"] the spend.
- `budget_node(fn, share=0.5)` / `BudgetState` / `exhausted(state)`: a child account per node of your own graph, its
  spend in the state, a refusal as state a conditional edge routes on.
- `python_tool(sandbox=...)` / `file_search_tool(root)`: agent tools; each sandbox run reserves its CPU bound on the
  run's account too.
- `BudgetMiddleware(account, prices=...)`: for `langchain.agents.create_agent` with any provider class: reserves before
  each model call, shrinks max_tokens or ends the run when the budget is spent.

The account is the model's/middleware's own or the run's: `config={"configurable": {"budgetflow_account": acc}}`.
"""

from ._lc_chat import BudgetedChatModel
from ._lc_convert import ACCOUNT_KEY, is_exhausted
from ._lc_middleware import BudgetMiddleware
from ._lc_nodes import BudgetState, add_spend, budget_node, exhausted, node_account
from ._lc_tools import file_search_tool, python_tool

__all__ = ["ACCOUNT_KEY", "BudgetMiddleware", "BudgetState", "BudgetedChatModel", "add_spend", "budget_node",
           "exhausted", "file_search_tool", "is_exhausted", "node_account", "python_tool"]
