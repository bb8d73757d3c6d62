"""The account tree of a ledger: roots created explicitly, sub-accounts under their parent, reopening by name."""

from __future__ import annotations

import json
from contextlib import nullcontext

from sqlalchemy import select, text

from ._account import Account
from ._errors import AccountMismatch, AccountMissing
from ._limits import DIMENSIONS, Budget
from ._tables import LedgerAccount
from ._transactions import _Chain, _WriteTx, now_us

_ACCOUNT = LedgerAccount.__table__


class LedgerAccounts:
    """Account methods of `Ledger` (a mixin: it uses the ledger's transactions and read connections)."""

    def root(self, name: str, budget: Budget) -> Account:
        """Create the root account `name` capped by `budget`, or reopen it (same budget). A root holds a cap of its
        own; pass `Budget()` for a root you mean to leave uncapped."""
        if not isinstance(budget, Budget):
            raise TypeError(f"a root account needs its Budget: ledger.root({name!r}, Budget(usd=...)), or Budget() "
                            f"for an explicitly uncapped root; got {type(budget).__name__}")
        return self._open_account(name, budget, None)

    def account(self, name: str, *, parent: Account | str | None = None) -> Account:
        """Reopen the existing account `name` (optionally checking its parent). Raises AccountMissing if the ledger
        has none: nothing is ever created here, so a typo or another ledger cannot become an uncapped root."""
        _check_name(name)
        row = self._account_row(name)
        if row is None:
            raise AccountMissing(f"the ledger {self.url} has no account {name!r}; create a root with "
                                 f"ledger.root(name, Budget(...)) or a sub-account with account.child(name)")
        if parent is not None:
            parent_name = parent.name if isinstance(parent, Account) else parent
            parent_row = self._account_row(parent_name)
            if parent_row is None or row.parent_id != parent_row.id:
                raise AccountMismatch(f"account {name!r} is not under {parent_name!r} in {self.url}")
        return Account(self, row.id, row.name)

    def _child(self, parent: Account, name: str, budget: Budget | None) -> Account:
        if budget is not None and not isinstance(budget, Budget):
            raise TypeError(f"budget must be a budgetflow.Budget, got {type(budget).__name__}")
        parent_row = self._account_row(parent.name)
        if parent_row is None:
            raise AccountMissing(f"parent account {parent.name!r} does not exist in {self.url}")
        return self._open_account(name, budget, parent_row)

    def _open_account(self, name: str, budget: Budget | None, parent_row) -> Account:
        """Create `name` under `parent_row` (None: a root) or reopen it, checking it is the same account."""
        _check_name(name)
        row = self._account_row(name)
        if row is None:
            with self._write() as tx:
                found = tx.fetch("SELECT * FROM bf_account WHERE name = :n", {"n": name})
                # another process may have created it meanwhile
                row = found[0] if found else self._insert_account(tx, name, budget or Budget(), parent_row)
        self._check_reopen(row, budget, parent_row)
        return Account(self, row.id, row.name)

    def _insert_account(self, tx: _WriteTx, name: str, budget: Budget, parent_row) -> object:
        caps = budget.cap_units()
        parent_id = parent_row.id if parent_row is not None else None
        values = dict(name=name, parent_id=parent_id, created_us=now_us(), **{f"cap_{d}": caps[d] for d in DIMENSIONS})
        (inserted,) = tx.fetch(
            f"INSERT INTO bf_account ({', '.join(values)}) VALUES ({', '.join(':' + k for k in values)}) RETURNING *",
            values,
        )
        definition = json.dumps(
            {"name": name, "parent_id": parent_id, "caps": {d: u for d, u in caps.items() if u is not None}},
            sort_keys=True, separators=(",", ":"),
        )
        tx.append("open", inserted.id, definition, note=f"account {name}")
        return inserted

    def _check_reopen(self, row, budget: Budget | None, parent_row) -> None:
        if row.parent_id != (parent_row.id if parent_row is not None else None):
            where = "as a root" if parent_row is None else f"under {parent_row.name!r}"
            raise AccountMismatch(
                f"account {row.name!r} already exists elsewhere in the tree, not {where}; names are unique in a ledger"
            )
        if budget is not None:
            stored = {d: getattr(row, f"cap_{d}") for d in DIMENSIONS}
            if stored != budget.cap_units():
                raise AccountMismatch(
                    f"account {row.name!r} already exists with budget ({Budget.from_units(stored).describe()}), "
                    f"not ({budget.describe()}); reopen it without a budget or pick another name"
                )

    def _account_row(self, name: str):
        with self._read() as conn:
            return conn.execute(select(_ACCOUNT).where(_ACCOUNT.c.name == name)).one_or_none()

    def _chain(self, account_id: int, tx: _WriteTx | None = None) -> _Chain:
        """Ids of the account and its ancestors (self first). Parents never change, so this is cached."""
        chain = self._chains.get(account_id)
        if chain is None:
            ids, names, current = [], {}, account_id
            sql = "SELECT id, name, parent_id FROM bf_account WHERE id = :i"
            with (nullcontext() if tx is not None else self._read()) as conn:
                while current is not None:
                    if tx is not None:
                        (row,) = tx.fetch(sql, {"i": current})
                    else:
                        row = conn.execute(text(sql), {"i": current}).one()
                    ids.append(row.id)
                    names[row.id] = row.name
                    current = row.parent_id
            chain = self._chains[account_id] = _Chain(tuple(ids), names)
        return chain


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ValueError(f"account name must be a non-empty string of at most 200 characters, got {name!r}")
