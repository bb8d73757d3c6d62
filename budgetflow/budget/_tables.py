"""The ledger's tables (SQLModel). Amounts are integers in the fixed-point units of `limits.UNITS`.

- `LedgerAccount` holds caps and running totals (reserved, committed) per account: a cache of the journal that makes
  the cap check one SQL statement; `Ledger.verify()` recomputes it from the journal.
- `LedgerEntry` is the journal: append-only and hash-chained; `seq` is assigned under the ledger's write lock.
- `ChainHead` is the single row that serialises writers and remembers the last entry (detects a deleted tail).
- `OpenReservation` lists reservations not yet settled, with the owner that holds them (for crash recovery).
- `LeaseOwner` (PostgreSQL only) is each live owner's heartbeat: a lease that survives a dropped connection.

The invariant — for every account and quantity, committed + reserved ≤ cap — is also a CHECK constraint of
`bf_account`, so no statement, ours or anyone's, can store a balance that breaks it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Column, Text
from sqlmodel import Field, SQLModel

from ._limits import DIMENSIONS

GENESIS_HASH = "0" * 64


def _amount(nullable: bool = False):
    if nullable:
        return Field(default=None, sa_type=BigInteger, nullable=True)
    # server default: the ledger inserts rows with plain SQL on its hot path
    return Field(default=0, sa_type=BigInteger, nullable=False, sa_column_kwargs={"server_default": "0"})


def _invariant() -> tuple[CheckConstraint, ...]:
    checks = []
    for d in DIMENSIONS:
        checks.append(CheckConstraint(f"cap_{d} IS NULL OR committed_{d} + reserved_{d} <= cap_{d}",
                                      name=f"bf_within_cap_{d}"))
        checks.append(CheckConstraint(f"reserved_{d} >= 0 AND committed_{d} >= 0", name=f"bf_non_negative_{d}"))
    return tuple(checks)


class LedgerAccount(SQLModel, table=True):
    __tablename__ = "bf_account"
    __table_args__ = _invariant()

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    parent_id: int | None = Field(default=None, foreign_key="bf_account.id")
    created_us: int = Field(sa_type=BigInteger)

    cap_usd: int | None = _amount(nullable=True)
    cap_input_tokens: int | None = _amount(nullable=True)
    cap_output_tokens: int | None = _amount(nullable=True)
    cap_gpu_seconds: int | None = _amount(nullable=True)
    cap_cpu_seconds: int | None = _amount(nullable=True)
    cap_wall_seconds: int | None = _amount(nullable=True)
    cap_calls: int | None = _amount(nullable=True)

    reserved_usd: int = _amount()
    reserved_input_tokens: int = _amount()
    reserved_output_tokens: int = _amount()
    reserved_gpu_seconds: int = _amount()
    reserved_cpu_seconds: int = _amount()
    reserved_wall_seconds: int = _amount()
    reserved_calls: int = _amount()

    committed_usd: int = _amount()
    committed_input_tokens: int = _amount()
    committed_output_tokens: int = _amount()
    committed_gpu_seconds: int = _amount()
    committed_cpu_seconds: int = _amount()
    committed_wall_seconds: int = _amount()
    committed_calls: int = _amount()


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "bf_entry"

    seq: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    ts_us: int = Field(sa_type=BigInteger)
    kind: str  # open | reserve | extend | commit | release | recover
    account_id: int = Field(index=True)
    reservation_id: str | None = Field(default=None, index=True)
    owner: str | None = None
    payload: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON: amounts, or the account definition
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    prev_hash: str
    hash: str


class ChainHead(SQLModel, table=True):
    __tablename__ = "bf_chain_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = Field(sa_type=BigInteger)
    hash: str


class OpenReservation(SQLModel, table=True):
    __tablename__ = "bf_open_reservation"

    id: str = Field(primary_key=True)
    account_id: int = Field(index=True)
    owner: str = Field(index=True)
    created_us: int = Field(sa_type=BigInteger)
    amounts: str = Field(sa_column=Column(Text, nullable=False))


class LeaseOwner(SQLModel, table=True):
    """A PostgreSQL owner's heartbeat (server clock). An owner is alive while it holds its advisory lock OR its
    heartbeat is younger than the ttl it promised: a dropped connection does not make a live process look dead."""

    __tablename__ = "bf_lease_owner"

    owner: str = Field(primary_key=True)
    heartbeat_us: int = Field(sa_type=BigInteger)
    ttl_us: int = Field(sa_type=BigInteger)
    host: str = ""
    pid: int = 0
