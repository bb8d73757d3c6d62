"""Reading spend back from the ledger: a task's total and its split by agent / kind (the task account's direct
sub-accounts: generate and verify for sampling, tester/solver/verifier/selector for the agent graphs)."""

from __future__ import annotations

from ..budget import Amounts, Ledger
from ..budget.views import AccountBalance
from .records import amounts_dict


def children_index(balances: list[AccountBalance]) -> dict[str | None, list[AccountBalance]]:
    index: dict[str | None, list[AccountBalance]] = {}
    for b in balances:
        index.setdefault(b.parent, []).append(b)
    return index


def split_spend(name: str, balances: dict[str, AccountBalance],
                children: dict[str | None, list[AccountBalance]]) -> dict[str, Amounts]:
    """{"total": the account's committed spend, <agent>: each direct sub-account's (named `<name>/<agent>`), and
    "direct": what was charged on the account itself, if anything}. Sub-accounts' spend already includes theirs."""
    bal = balances.get(name)
    if bal is None:
        return {}
    out: dict[str, Amounts] = {"total": bal.committed}
    rest = bal.committed.model_dump()
    for child in children.get(name, []):
        agent = child.name.removeprefix(name + "/").split("/", 1)[0] or child.name
        out[agent] = child.committed
        for k, v in child.committed.model_dump().items():
            rest[k] -= v
    if any(v > 1e-12 for v in rest.values()):
        out["direct"] = Amounts(**{k: max(v, 0) for k, v in rest.items()})
    return out


def task_spend(ledger: Ledger, name: str) -> dict[str, dict[str, float | int]]:
    """The task account's spend split by agent, as plain dicts (for a result line)."""
    balances = ledger.accounts()
    by_name = {b.name: b for b in balances}
    return {k: amounts_dict(v) for k, v in split_spend(name, by_name, children_index(balances)).items()}
