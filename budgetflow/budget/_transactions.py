"""The ledger's write transaction (one short transaction holding the chain head) and the cached account chains."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from types import SimpleNamespace

from ._chain import entry_hash
from ._tables import GENESIS_HASH

_PARAM = re.compile(r":(\w+)")


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass
class _WriteTx:
    """One open write transaction, holding the chain head. Runs on the DB-API cursor directly: the hot path is a
    handful of tiny statements, and SQLAlchemy's per-statement overhead would be most of its cost."""

    cur: object
    pyformat: bool  # psycopg wants %(name)s, sqlite3 takes :name
    seq: int = 0
    hash: str = GENESIS_HASH
    appended: bool = False

    def execute(self, sql: str, params: dict | None = None) -> int:
        self.cur.execute(_pyformat(sql) if self.pyformat else sql, params or {})
        return self.cur.rowcount

    def fetch(self, sql: str, params: dict | None = None) -> list[SimpleNamespace]:
        self.execute(sql, params)
        names = [d[0] for d in self.cur.description]
        return [SimpleNamespace(**dict(zip(names, row))) for row in self.cur.fetchall()]

    def append(self, kind: str, account_id: int, payload: str, *, reservation_id=None, owner=None, note="") -> int:
        seq, ts = self.seq + 1, now_us()
        digest = entry_hash(
            prev_hash=self.hash, seq=seq, ts_us=ts, kind=kind, account_id=account_id,
            reservation_id=reservation_id, owner=owner, payload=payload, note=note,
        )
        self.execute(
            "INSERT INTO bf_entry (seq, ts_us, kind, account_id, reservation_id, owner, payload, note, prev_hash, hash)"
            " VALUES (:seq, :ts, :kind, :acc, :res, :owner, :payload, :note, :prev, :hash)",
            dict(seq=seq, ts=ts, kind=kind, acc=account_id, res=reservation_id, owner=owner, payload=payload,
                 note=note, prev=self.hash, hash=digest),
        )
        self.seq, self.hash, self.appended = seq, digest, True
        return seq


@lru_cache(maxsize=1024)
def _pyformat(sql: str) -> str:
    return _PARAM.sub(r"%(\1)s", sql)


@dataclass
class _Chain:
    """An account's id and those of its ancestors, self first."""

    ids: tuple[int, ...]
    names: dict[int, str] = field(default_factory=dict)
