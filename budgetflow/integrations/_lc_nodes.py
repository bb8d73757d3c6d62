"""A budget per node of a user's own LangGraph graph: each node spends from a child account of the run's account (a
share or a fixed cap of it), reports its spend in the state, and turns a refusal into state a conditional edge can
route on — the graph keeps its state and can finish with the best answer so far.

Checkpointing needs nothing special: LangGraph does not re-run a node whose writes a checkpoint holds (a finished
super-step, or a finished node's pending writes in a failed one), so a resumed graph pays for nothing twice, and
the node reopens its account by name (`<run account>/<node>`) on resume."""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Callable

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import patch_config
from typing_extensions import TypedDict  # the kind LangGraph's MessagesState is, so the two mix in one state

from ..budget import DIMENSIONS, Account, AccountMissing, Budget, BudgetExceeded, Ledger
from . import _lc_convert as convert


def add_spend(old: dict[str, float] | None, new: dict[str, float] | None) -> dict[str, float]:
    """Reducer of BudgetState.spend: a node's spend adds up over its runs."""
    out = dict(old or {})
    for node, usd in (new or {}).items():
        out[node] = out.get(node, 0.0) + usd
    return out


class BudgetState(TypedDict, total=False):
    """The state keys `budget_node` writes: mix them into your graph's state (`class State(MessagesState,
    BudgetState)`)."""

    spend: Annotated[dict[str, float], add_spend]  # node → dollars its runs spent
    budget_exhausted: str | None  # why a budgeted node was refused; None while the budget holds


def exhausted(state: dict[str, Any]) -> bool:
    """For a conditional edge: whether a budgeted node ran out (route to the best answer so far)."""
    return bool(state.get("budget_exhausted"))


def node_account(parent: Account, node: str, *, share: float | None = None, budget: Budget | None = None) -> Account:
    """`<parent>/<node>`, created on first use with a fixed `budget` or a `share` of what the parent has left,
    reopened as it is afterwards (a resumed run, the node's next visit)."""
    name = f"{parent.name}/{node}"
    try:
        existing = parent.ledger.account(name)
    except AccountMissing:
        existing = None
    if existing is not None:
        return parent.child(name)  # checks it is this parent's
    if share is not None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share!r}")
        left = parent.remaining()
        caps = {d: getattr(left, d) * share for d in DIMENSIONS if getattr(left, d) is not None}
        budget = Budget(**{d: int(v) if d in ("input_tokens", "output_tokens", "calls") else v
                           for d, v in caps.items()})
    return parent.child(name, budget)


def budget_node(node: Callable[..., Any], *, name: str | None = None, share: float | None = None,
                budget: Budget | None = None, account: Account | None = None,
                ledger: Ledger | None = None) -> Callable[..., Any]:
    """Wrap a LangGraph node (sync or async, `node(state)` or `node(state, config)`) to run on its own child account.

    The parent is the run's account (`config["configurable"]["budgetflow_account"]`, an Account or, with `ledger=`,
    a name) or `account=`. Inside the node, every BudgetedChatModel (and anything else reading the run's config)
    charges the child. The node's update gains `spend: {name: usd}`; a BudgetExceeded raised inside, or a message
    the budget refused, sets `budget_exhausted` instead of failing the graph."""
    label = name or getattr(node, "__name__", "node")
    takes_config = len(inspect.signature(node).parameters) >= 2

    def prepare(config: RunnableConfig) -> tuple[Account, RunnableConfig, float]:
        parent = convert.account_from(config, account, ledger)
        if parent is None:
            raise ValueError(f"budget_node({label!r}): no account to spend from. Run the graph with config="
                             f"{{'configurable': {{'budgetflow_account': account}}}} or pass account=")
        mine = node_account(parent, label, share=share, budget=budget)
        inner = patch_config(config, configurable={**(config.get("configurable") or {}), convert.ACCOUNT_KEY: mine})
        return mine, inner, mine.spent().usd

    def finish(update: Any, mine: Account, before: float) -> Any:
        if update is not None and not isinstance(update, dict):
            return update  # a Command or a custom object: passed on as it is
        update = dict(update or {})
        messages = update.get("messages")
        refused = [m for m in (messages if isinstance(messages, list) else [messages]) if convert.is_exhausted(m)]
        if refused and not update.get("budget_exhausted"):
            update["budget_exhausted"] = f"{label}: {refused[-1].response_metadata['budgetflow']['reason']}"
        update["spend"] = add_spend(update.get("spend"), {label: mine.spent().usd - before})
        return update

    def refused(err: BudgetExceeded) -> dict[str, Any]:
        return {"budget_exhausted": f"{label}: {err}"}

    if inspect.iscoroutinefunction(node):
        async def run_async(state: Any, config: RunnableConfig) -> Any:
            from langchain_core.runnables.config import var_child_runnable_config

            mine, inner, before = prepare(config)
            token = var_child_runnable_config.set(inner)  # models called without a config read the current one
            try:
                update = await (node(state, inner) if takes_config else node(state))
            except BudgetExceeded as err:
                update = refused(err)
            finally:
                var_child_runnable_config.reset(token)
            return finish(update, mine, before)

        run_async.__name__ = label
        return run_async

    def run(state: Any, config: RunnableConfig) -> Any:
        mine, inner, before = prepare(config)
        try:
            update = node(state, inner) if takes_config else _with_config(node, state, inner)
        except BudgetExceeded as err:
            update = refused(err)
        return finish(update, mine, before)

    run.__name__ = label
    return run


def _with_config(node: Callable[..., Any], state: Any, config: RunnableConfig) -> Any:
    """Run a node that takes no config with the child's config current, so the models it calls (which read the
    current config when given none) charge the child."""
    from langchain_core.runnables.config import var_child_runnable_config

    token = var_child_runnable_config.set(config)
    try:
        return node(state)
    finally:
        var_child_runnable_config.reset(token)
