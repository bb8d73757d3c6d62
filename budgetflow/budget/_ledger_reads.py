"""Reading a ledger: balances, the journal, overruns, and the audit."""

from __future__ import annotations

from sqlalchemy import select, text

from ._audit import VerifyReport, verify_entries
from ._errors import LedgerMissing
from ._tables import LedgerAccount, LedgerEntry
from ._views import AccountBalance, EntryView

_ACCOUNT = LedgerAccount.__table__
_ENTRY = LedgerEntry.__table__


class LedgerReads:
    """Read methods of `Ledger` (a mixin: it uses the ledger's read connections and account chains)."""

    def balance(self, account_id: int) -> AccountBalance:
        (bal,) = self.balances([account_id])
        return bal

    def balances(self, account_ids: list[int] | tuple[int, ...]) -> list[AccountBalance]:
        """Balances of several accounts read in one query (one snapshot), in the order given."""
        with self._read() as conn:
            rows = {r.id: r for r in conn.execute(select(_ACCOUNT).where(_ACCOUNT.c.id.in_(account_ids))).all()}
        out = []
        for account_id in account_ids:
            chain = self._chain(account_id)  # cached: names of the account and its ancestors
            parent = chain.names[chain.ids[1]] if len(chain.ids) > 1 else None
            out.append(AccountBalance.from_row(rows[account_id], parent))
        return out

    def accounts(self) -> list[AccountBalance]:
        with self._read() as conn:
            rows = conn.execute(select(_ACCOUNT).order_by(_ACCOUNT.c.id)).all()
        names = {r.id: r.name for r in rows}
        return [AccountBalance.from_row(r, names.get(r.parent_id)) for r in rows]

    def entries(self, account: str | None = None, limit: int | None = None) -> list[EntryView]:
        """Journal entries in order (the last `limit` ones if given), optionally for one account only."""
        with self._read() as conn:
            names = dict(conn.execute(text("SELECT id, name FROM bf_account")).all())
            query = select(_ENTRY).order_by(_ENTRY.c.seq.desc() if limit else _ENTRY.c.seq)
            if account is not None:
                ids = [i for i, n in names.items() if n == account]
                if not ids:
                    raise LedgerMissing(f"no account named {account!r} in this ledger")
                query = query.where(_ENTRY.c.account_id == ids[0])
            if limit:
                query = query.limit(limit)
            rows = conn.execute(query).all()
        if limit:
            rows.reverse()
        return [EntryView.from_row(r, names.get(r.account_id, f"#{r.account_id}")) for r in rows]

    def overruns(self) -> list[EntryView]:
        """Every amount billed beyond its reservation (each one a violation of the cap)."""
        return [e for e in self.entries() if e.kind == "overrun"]

    def verify(self) -> VerifyReport:
        """Check the hash chain and the chain head; replay the journal and check that balances and open
        reservations (id, account, owner, amounts) match it, and that no account ever went past its cap."""
        with self._read() as conn:
            with conn.begin():  # one snapshot for all reads
                entries = conn.execute(select(_ENTRY).order_by(_ENTRY.c.seq)).all()
                head = conn.execute(text("SELECT seq, hash FROM bf_chain_head WHERE id = 1")).one_or_none()
                accounts = conn.execute(select(_ACCOUNT)).all()
                open_rows = conn.execute(text("SELECT id, account_id, owner, amounts FROM bf_open_reservation")).all()
        return verify_entries(entries, head, accounts, open_rows)
