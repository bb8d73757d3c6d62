"""Ledger audit: recompute the hash chain, replay the journal against the stored balances and open reservations, and
check the cap after every entry.

Two kinds of findings:
- problems: the ledger was edited, deleted from, reordered, or its tables disagree with its journal (tampering);
- violations: the journal itself shows an account past its cap — an `overrun` entry (billed beyond a reservation),
  a settlement charging more than its reservation held, or balances beyond a cap. Either makes `ok` false.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydantic import BaseModel

from ._chain import entry_hash
from ._limits import DIMENSIONS, format_amount
from ._tables import GENESIS_HASH


class VerifyReport(BaseModel):
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problems: list[str] = []  # tampering or corruption
    violations: list[str] = []  # the cap was exceeded (overruns), as the journal itself records

    def summary(self) -> str:
        if self.ok:
            return (f"ledger OK: {self.entries} entries, hash chain intact, balances match the journal, "
                    f"every account within its cap")
        if self.problems:
            return f"ledger TAMPERED or corrupt: {self.problems[0]}" + (
                f" (+{len(self.problems) - 1} more problems)" if len(self.problems) > 1 else "")
        return f"CAP VIOLATED: {self.violations[0]}" + (
            f" (+{len(self.violations) - 1} more)" if len(self.violations) > 1 else "")


@dataclass
class _Replayed:
    name: str
    parent_id: int | None
    caps: dict[str, int]
    reserved: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIMENSIONS, 0))
    committed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIMENSIONS, 0))


@dataclass
class _Open:
    account_id: int
    owner: str | None
    amounts: dict[str, int]


def _check_chain(entries, head) -> tuple[int | None, list[str]]:
    prev, expected_seq = GENESIS_HASH, 1
    for e in entries:
        if e.seq != expected_seq:
            what = "missing (deleted)" if e.seq > expected_seq else "out of order"
            return expected_seq, [f"entry #{expected_seq} is {what}: found #{e.seq} where #{expected_seq} should be"]
        if e.prev_hash != prev:
            return e.seq, [f"entry #{e.seq} does not follow entry #{e.seq - 1} (prev_hash mismatch: reordered or "
                           f"an earlier entry was replaced)"]
        digest = entry_hash(prev_hash=e.prev_hash, seq=e.seq, ts_us=e.ts_us, kind=e.kind, account_id=e.account_id,
                            reservation_id=e.reservation_id, owner=e.owner, payload=e.payload, note=e.note)
        if digest != e.hash:
            return e.seq, [f"entry #{e.seq} ({e.kind}) was edited: its content does not match its hash"]
        prev, expected_seq = e.hash, expected_seq + 1
    last_seq = expected_seq - 1
    if head is None:
        return None, ["the chain head row is missing"]
    if head.seq != last_seq or head.hash != prev:
        return last_seq + 1, [f"the journal ends at entry #{last_seq} but the chain head says #{head.seq}: "
                              f"entries after #{last_seq} were deleted (or the head was edited)"]
    return None, []


class _Replay:
    """Rebuild balances and open reservations from the journal, checking the cap after every entry."""

    def __init__(self) -> None:
        self.accounts: dict[int, _Replayed] = {}
        self.open: dict[str, _Open] = {}
        self.violations: list[str] = []

    def chain(self, account_id: int | None):
        while account_id is not None:
            yield self.accounts[account_id]
            account_id = self.accounts[account_id].parent_id

    def check_caps(self, seq: int, account_id: int) -> None:
        for acc in self.chain(account_id):
            for d, cap in acc.caps.items():
                if acc.committed[d] + acc.reserved[d] > cap:
                    self.violations.append(
                        f"entry #{seq} takes account {acc.name!r} past its cap on {d}: "
                        f"{format_amount(d, acc.committed[d])} committed + {format_amount(d, acc.reserved[d])} "
                        f"held > {format_amount(d, cap)}")

    def apply(self, e) -> str | None:
        """Apply one entry; returns a problem (the journal is inconsistent) or None."""
        payload = json.loads(e.payload)
        if e.kind == "open":
            self.accounts[e.account_id] = _Replayed(payload["name"], payload["parent_id"], payload["caps"])
            return None
        if e.account_id not in self.accounts:
            return f"entry #{e.seq} refers to unknown account {e.account_id}"
        if e.kind == "reserve":
            self.open[e.reservation_id] = _Open(e.account_id, e.owner, dict(payload))
            self._add(e.account_id, "reserved", payload)
        elif e.kind == "extend":
            held = self.open.get(e.reservation_id)
            if held is None:
                return f"entry #{e.seq} extends reservation {e.reservation_id}, which is not open"
            for d, u in payload.items():
                held.amounts[d] = held.amounts.get(d, 0) + u
            self._add(held.account_id, "reserved", payload)
        elif e.kind in ("commit", "release", "recover"):
            held = self.open.pop(e.reservation_id, None)
            if held is None:
                return f"entry #{e.seq} settles reservation {e.reservation_id}, which is not open"
            over = {d: u - held.amounts.get(d, 0) for d, u in payload.items() if u > held.amounts.get(d, 0)}
            if over:
                self.violations.append(f"entry #{e.seq} charges more than its reservation held: " + ", ".join(
                    f"{format_amount(d, u)} over ({d})" for d, u in over.items()))
            self._add(held.account_id, "reserved", {d: -u for d, u in held.amounts.items()})
            self._add(held.account_id, "committed", payload)
        elif e.kind == "overrun":
            name = self.accounts[e.account_id].name
            self.violations.append(f"entry #{e.seq}: account {name!r} was billed beyond its reservation "
                                   f"{e.reservation_id}: " + ", ".join(f"{format_amount(d, u)} ({d})"
                                                                       for d, u in payload.items()))
        else:
            return f"entry #{e.seq} has unknown kind {e.kind!r}"
        self.check_caps(e.seq, e.account_id)
        return None

    def _add(self, account_id: int, column: str, amounts: dict[str, int]) -> None:
        for acc in self.chain(account_id):
            bucket = getattr(acc, column)
            for d, u in amounts.items():
                bucket[d] += u


def verify_entries(entries, head, account_rows, open_rows) -> VerifyReport:
    bad_seq, problems = _check_chain(entries, head)
    if problems:
        return VerifyReport(ok=False, entries=len(entries), first_bad_seq=bad_seq, problems=problems)
    replay = _Replay()
    for e in entries:
        problem = replay.apply(e)
        if problem:
            return VerifyReport(ok=False, entries=len(entries), first_bad_seq=e.seq, problems=[problem])
    stored = {r.id: r for r in account_rows}
    for account_id in sorted(set(stored) | set(replay.accounts)):
        row, acc = stored.get(account_id), replay.accounts.get(account_id)
        if row is None or acc is None:
            problems.append(f"account id {account_id} is in {'the journal' if acc else 'the table'} only")
            continue
        if row.name != acc.name or row.parent_id != acc.parent_id:
            problems.append(f"account {row.name!r}: name or parent differs from its journal definition")
        for d in DIMENSIONS:
            if getattr(row, f"cap_{d}") != acc.caps.get(d):
                problems.append(f"account {row.name!r}: cap on {d} differs from its journal definition")
            if getattr(row, f"reserved_{d}") != acc.reserved[d] or getattr(row, f"committed_{d}") != acc.committed[d]:
                problems.append(f"account {row.name!r}: stored {d} balance differs from the journal")
    problems += _compare_open(open_rows, replay.open)
    return VerifyReport(ok=not problems and not replay.violations, entries=len(entries), problems=problems,
                        violations=replay.violations)


def _compare_open(rows, replayed: dict[str, _Open]) -> list[str]:
    """Open reservations must match the journal exactly: the same ids, accounts, owners and amounts."""
    problems = []
    stored = {r.id: r for r in rows}
    for rid in sorted(set(stored) - set(replayed)):
        problems.append(f"open reservation {rid} is not open in the journal (inserted or left behind)")
    for rid in sorted(set(replayed) - set(stored)):
        problems.append(f"open reservation {rid} of the journal is missing from the table (deleted)")
    for rid in sorted(set(stored) & set(replayed)):
        row, want = stored[rid], replayed[rid]
        amounts = {d: int(u) for d, u in json.loads(row.amounts).items() if u}
        if row.account_id != want.account_id or row.owner != want.owner or amounts != {
                d: u for d, u in want.amounts.items() if u}:
            problems.append(f"open reservation {rid}: its account, owner or amounts differ from the journal")
    return problems
