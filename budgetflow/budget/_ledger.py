"""The ledger: accounts in a tree, reservations held atomically on an account and all its ancestors, and an
append-only, hash-chained journal of everything that happened.

Every write runs in one short transaction that first locks the chain head (SQLite: BEGIN IMMEDIATE; PostgreSQL:
SELECT ... FOR UPDATE), so the cap check, the balance update and the journal append are atomic across threads,
processes and machines.

The invariant — for every account and quantity, committed + reserved ≤ cap — holds by construction:
- a reservation is held on the account and every ancestor only where it fits (one UPDATE ... WHERE fits);
- a settlement never charges more than its reservation held: anything billed beyond it is journalled as a separate
  `overrun` entry, kept out of the balances, and `verify()` reports it as a violation of the cap;
- the table's CHECK constraints refuse any balance that breaks the invariant.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, inspect, text
from sqlmodel import SQLModel

from ._account import Account
from ._chain import canonical_amounts
from ._engine import DEFAULT_URL, make_engine, normalize_url, sqlite_path
from ._errors import BudgetExceeded, LedgerClosed, LedgerMissing, ReservationClosed
from ._ledger_accounts import LedgerAccounts
from ._ledger_reads import LedgerReads
from ._keys import ApiKeyRow
from ._limits import DIMENSIONS, Amounts, format_amount
from ._owners import FileLease, OwnerLease, PostgresLease, ProcessLocalLease
from ._tables import GENESIS_HASH, ChainHead, LeaseOwner, LedgerAccount, LedgerEntry, OpenReservation
from ._transactions import _Chain, _WriteTx, now_us
from ._views import RecoveredReservation



class Ledger(LedgerAccounts, LedgerReads):
    """A budget ledger at `url` (`sqlite:///file.db` by default; `postgresql://...` for many machines).

    Opening a ledger settles reservations left open by dead processes (charged as reserved), unless `recover=False`.
    A relative SQLite path is resolved against the current directory once, here: `url` is always absolute.
    `lease_ttl_s` (PostgreSQL): how long this process may be unreachable before others treat it as dead.
    """

    def __init__(self, url: str | Path = DEFAULT_URL, *, create: bool = True, recover: bool = True,
                 lease_ttl_s: float = 30.0):
        self.url = normalize_url(url)
        self._closed = False
        self._lease_ttl_s = lease_ttl_s
        self._last_recover = 0.0
        if not create and sqlite_path(self.url) and not os.path.exists(sqlite_path(self.url)):
            raise LedgerMissing(f"no budgetflow ledger at {self.url}: the file does not exist; check --db")
        if create and sqlite_path(self.url):
            Path(sqlite_path(self.url)).parent.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(self.url)
        self._pid = os.getpid()
        self.backend = self.engine.dialect.name
        self.owner = uuid.uuid4().hex
        self._db_path = sqlite_path(self.url)
        # One writer per process at a time: threads queue here instead of spinning on the database lock.
        self._write_lock = threading.Lock()
        self._read_lock = self._write_lock if (self.backend == "sqlite" and not self._db_path) else nullcontext()
        self._lease = self._make_lease()
        self._lease_lock = threading.Lock()
        self._leased = False
        self._chains: dict[int, _Chain] = {}
        self._writer = None  # DB-API connection used for all writes of this Ledger
        if create:
            self._create_schema()
        elif not self._schema_present():
            raise LedgerMissing(f"no budgetflow ledger at {self.url}; check --db, or create one by running a job")
        self.recovered: list[RecoveredReservation] = self.recover() if recover else []

    # ------------------------------------------------------------------ setup

    def _make_lease(self) -> OwnerLease:
        if self.backend == "postgresql":
            return PostgresLease(self.engine, self.owner, self._lease_ttl_s)
        if self._db_path:
            return FileLease(self._db_path, self.owner)
        return ProcessLocalLease()

    def _schema_present(self) -> bool:
        return inspect(self.engine).has_table(LedgerEntry.__tablename__)

    def _create_schema(self) -> None:
        tables = [t.__table__ for t in (LedgerAccount, LedgerEntry, ChainHead, OpenReservation, ApiKeyRow)]
        if self.backend == "postgresql":
            tables.append(LeaseOwner.__table__)
        with self._schema_lock() as conn:
            SQLModel.metadata.create_all(conn, tables=tables)
            conn.execute(
                text("INSERT INTO bf_chain_head (id, seq, hash) VALUES (1, 0, :h) ON CONFLICT (id) DO NOTHING"),
                {"h": GENESIS_HASH},
            )

    @contextmanager
    def _schema_lock(self) -> Iterator[Connection]:
        """Serialise schema creation between processes that open a new ledger at the same moment."""
        with self.engine.connect() as conn:
            if self.backend == "sqlite":
                conn.execution_options(budgetflow_write=True)
            with conn.begin():
                if self.backend == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(7424151)"))
                yield conn

    def close(self) -> None:
        """Drop this process's lease (reservations still open become recoverable) and close connections. A closed
        Ledger refuses every further call (LedgerClosed): without its lease, what it reserved could be recovered."""
        if self._closed:
            return
        with self._write_lock:
            self._closed = True
        self._lease.release()
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self.engine.dispose()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.engine.url.render_as_string(hide_password=True)!r})"

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _write(self) -> Iterator[_WriteTx]:
        """A write transaction that holds the chain head: SQLite BEGIN IMMEDIATE, PostgreSQL SELECT ... FOR UPDATE.
        Writes of this process share one connection, serialised by a lock (they serialise in the database anyway)."""
        if os.getpid() != self._pid:
            raise RuntimeError("a Ledger cannot be used across fork(); open a new Ledger(url) in the child process")
        with self._write_lock:
            self._check_open()
            if self._writer is None:
                self._writer = self.engine.raw_connection()
            dbapi = self._writer
            tx = _WriteTx(dbapi.cursor(), pyformat=self.backend == "postgresql")
            try:
                if self.backend == "sqlite":
                    tx.execute("BEGIN IMMEDIATE")
                lock = " FOR UPDATE" if self.backend == "postgresql" else ""
                (head,) = tx.fetch(f"SELECT seq, hash FROM bf_chain_head WHERE id = 1{lock}")
                tx.seq, tx.hash = head.seq, head.hash
                yield tx
                if tx.appended:
                    tx.execute("UPDATE bf_chain_head SET seq = :s, hash = :h WHERE id = 1", {"s": tx.seq, "h": tx.hash})
                dbapi.commit()
            except BaseException:
                try:
                    dbapi.rollback()
                except Exception:  # the connection itself is broken: reconnect on the next write
                    self._writer = None
                    dbapi.invalidate()
                raise
            finally:
                tx.cur.close()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        self._check_open()
        with self._read_lock, self.engine.connect() as conn:
            yield conn

    def _check_open(self) -> None:
        if self._closed:
            raise LedgerClosed(f"{self!r} was closed: open a new Ledger(url) to spend or read again")

    def _ensure_lease(self) -> None:
        self._check_open()
        if not self._leased:
            with self._lease_lock:
                if not self._leased:
                    self._lease.acquire()
                    self._leased = True
    # ------------------------------------------------------------------ reserve / settle

    def _hold(self, tx: _WriteTx, chain: _Chain, units: dict[str, int]) -> None:
        """Add `units` to the reserved amounts of every account in the chain, or raise BudgetExceeded."""
        if units:
            if tx.execute(self._reserve_sql(tuple(units), chain.ids), units) != len(chain.ids):
                raise self._exceeded(tx, chain, units)

    def _reserve(self, account: Account, units: dict[str, int]) -> str:
        try:
            return self._try_reserve(account, units)
        except BudgetExceeded:
            # budget held by an owner that died since this ledger was opened is freed by recovering it
            if time.monotonic() - self._last_recover < 5.0 or not self.recover():
                raise
        return self._try_reserve(account, units)

    def _try_reserve(self, account: Account, units: dict[str, int]) -> str:
        chain = self._chain(account.id)
        reservation_id = uuid.uuid4().hex
        self._ensure_lease()
        with self._write() as tx:
            self._hold(tx, chain, units)
            payload = canonical_amounts(units)
            tx.execute(
                "INSERT INTO bf_open_reservation (id, account_id, owner, created_us, amounts)"
                " VALUES (:id, :acc, :owner, :ts, :amounts)",
                dict(id=reservation_id, acc=account.id, owner=self.owner, ts=now_us(), amounts=payload),
            )
            tx.append("reserve", account.id, payload, reservation_id=reservation_id, owner=self.owner)
        return reservation_id

    def _extend(self, account: Account, reservation_id: str, held: dict[str, int], more: dict[str, int]) -> None:
        """Grow an open reservation by `more`, under the same cap checks as a new one."""
        chain = self._chain(account.id)
        total = {d: held.get(d, 0) + more.get(d, 0) for d in set(held) | set(more)}
        with self._write() as tx:
            self._hold(tx, chain, more)
            if tx.execute("UPDATE bf_open_reservation SET amounts = :a WHERE id = :r",
                          {"a": canonical_amounts(total), "r": reservation_id}) != 1:
                raise ReservationClosed(f"reservation {reservation_id} was already settled (possibly by recovery)")
            tx.append("extend", account.id, canonical_amounts(more), reservation_id=reservation_id, owner=self.owner)

    @staticmethod
    @lru_cache(maxsize=4096)
    def _reserve_sql(dims: tuple[str, ...], ids: tuple[int, ...]) -> str:
        sets = ", ".join(f"reserved_{d} = reserved_{d} + :{d}" for d in dims)
        fits = " AND ".join(f"(cap_{d} IS NULL OR committed_{d} + reserved_{d} + :{d} <= cap_{d})" for d in dims)
        return f"UPDATE bf_account SET {sets} WHERE id IN ({','.join(map(str, ids))}) AND {fits}"

    def _exceeded(self, tx: _WriteTx, chain: _Chain, units: dict[str, int]) -> BudgetExceeded:
        """Name the first account (nearest first) and quantity that cannot afford the reservation."""
        for account_id in chain.ids:
            (row,) = tx.fetch("SELECT * FROM bf_account WHERE id = :i", {"i": account_id})
            for dim, need in units.items():
                cap = getattr(row, f"cap_{dim}")
                if cap is not None:
                    left = cap - getattr(row, f"committed_{dim}") - getattr(row, f"reserved_{dim}")
                    if need > left:
                        return BudgetExceeded(row.name, dim, need, left, cap)
        raise AssertionError("reservation refused but every account affords it")  # unreachable under the lock

    def _settle(
        self, tx: _WriteTx, reservation_id: str, account_id: int, held: dict[str, int], charged: dict[str, int],
        kind: str, note: str = "", owner: str | None = None,
    ) -> dict[str, int]:
        """Close a reservation, charging `charged` but never more than `held` in any quantity. Returns the excess
        (what was billed beyond the reservation), which is journalled as an `overrun` entry: a cap violation that
        `verify()` reports, never part of the balances."""
        if tx.execute("DELETE FROM bf_open_reservation WHERE id = :r", {"r": reservation_id}) != 1:
            raise ReservationClosed(f"reservation {reservation_id} was already settled (possibly by recovery)")
        chain = self._chain(account_id, tx)
        within = {d: min(u, held.get(d, 0)) for d, u in charged.items()}
        excess = {d: u - within[d] for d, u in charged.items() if u > within[d]}
        dims = tuple(d for d in DIMENSIONS if held.get(d) or within.get(d))
        if dims:
            sql = self._settle_sql(dims, chain.ids)
            params = {f"h_{d}": held.get(d, 0) for d in dims} | {f"c_{d}": within.get(d, 0) for d in dims}
            tx.execute(sql, params)
        tx.append(kind, account_id, canonical_amounts(within), reservation_id=reservation_id,
                  owner=owner or self.owner, note=note)
        if excess:
            what = ", ".join(f"{format_amount(d, u)} ({d})" for d, u in excess.items())
            tx.append("overrun", account_id, canonical_amounts(excess), reservation_id=reservation_id,
                      owner=owner or self.owner, note=f"billed beyond its reservation: {what}; the cap may be "
                                                      f"exceeded by this much")
        return excess

    @staticmethod
    @lru_cache(maxsize=4096)
    def _settle_sql(dims: tuple[str, ...], ids: tuple[int, ...]) -> str:
        sets = ", ".join(f"reserved_{d} = reserved_{d} - :h_{d}, committed_{d} = committed_{d} + :c_{d}" for d in dims)
        return f"UPDATE bf_account SET {sets} WHERE id IN ({','.join(map(str, ids))})"

    # ------------------------------------------------------------------ recovery

    def recover(self) -> list[RecoveredReservation]:
        """Settle reservations whose owner process is dead: charged in full, as reserved, and journalled."""
        self._last_recover = time.monotonic()
        with self._read() as conn:
            owners = conn.execute(
                text("SELECT DISTINCT owner FROM bf_open_reservation WHERE owner <> :me"), {"me": self.owner}
            ).scalars().all()
        dead = [o for o in owners if not self._lease.is_alive(o)]
        if not dead:
            return []
        recovered: list[RecoveredReservation] = []
        with self._write() as tx:
            rows = [r for r in tx.fetch("SELECT * FROM bf_open_reservation ORDER BY created_us") if r.owner in dead]
            for row in rows:
                held = json.loads(row.amounts)
                note = f"recovered: owner {row.owner} died holding this reservation; charged as reserved"
                self._settle(tx, row.id, row.account_id, held, held, "recover", note, owner=row.owner)
                name = self._chain(row.account_id, tx).names[row.account_id]
                recovered.append(RecoveredReservation(
                    reservation_id=row.id, account=name, owner=row.owner, charged=Amounts.from_units(held)
                ))
        for owner in dead:
            self._lease.forget(owner)
        return recovered
