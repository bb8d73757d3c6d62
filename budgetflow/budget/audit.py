"""Ledger audit: recompute the hash chain and replay the journal against the stored balances."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydantic import BaseModel

from .chain import entry_hash
from .limits import DIMENSIONS
from .tables import GENESIS_HASH


class VerifyReport(BaseModel):
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problems: list[str] = []

    def summary(self) -> str:
        if self.ok:
            return f"ledger OK: {self.entries} entries, hash chain intact, balances match the journal"
        return f"ledger TAMPERED or corrupt: {self.problems[0]}" + (
            f" (+{len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
        )


@dataclass
class _Replayed:
    name: str
    parent_id: int | None
    caps: dict[str, int]
    reserved: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIMENSIONS, 0))
    committed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIMENSIONS, 0))


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


def _replay(entries) -> tuple[dict[int, _Replayed], set[str], int | None, list[str]]:
    """Rebuild balances from the journal. Returns (accounts, open reservation ids, first bad seq, problems)."""
    accounts: dict[int, _Replayed] = {}
    open_res: dict[str, tuple[int, dict[str, int]]] = {}

    def chain(account_id: int):
        while account_id is not None:
            yield accounts[account_id]
            account_id = accounts[account_id].parent_id

    for e in entries:
        payload = json.loads(e.payload)
        if e.kind == "open":
            accounts[e.account_id] = _Replayed(payload["name"], payload["parent_id"], payload["caps"])
            continue
        if e.account_id not in accounts:
            return accounts, set(open_res), e.seq, [f"entry #{e.seq} refers to unknown account {e.account_id}"]
        if e.kind == "reserve":
            open_res[e.reservation_id] = (e.account_id, payload)
            for acc in chain(e.account_id):
                for d, u in payload.items():
                    acc.reserved[d] += u
        elif e.kind == "extend":
            if e.reservation_id not in open_res:
                return accounts, set(open_res), e.seq, [
                    f"entry #{e.seq} extends reservation {e.reservation_id}, which is not open"]
            account_id, held = open_res[e.reservation_id]
            for d, u in payload.items():
                held[d] = held.get(d, 0) + u
            for acc in chain(account_id):
                for d, u in payload.items():
                    acc.reserved[d] += u
        elif e.kind in ("commit", "release", "recover"):
            if e.reservation_id not in open_res:
                return accounts, set(open_res), e.seq, [
                    f"entry #{e.seq} settles reservation {e.reservation_id}, which is not open"]
            account_id, held = open_res.pop(e.reservation_id)
            for acc in chain(account_id):
                for d, u in held.items():
                    acc.reserved[d] -= u
                for d, u in payload.items():
                    acc.committed[d] += u
        else:
            return accounts, set(open_res), e.seq, [f"entry #{e.seq} has unknown kind {e.kind!r}"]
    return accounts, set(open_res), None, []


def verify_entries(entries, head, account_rows, open_ids: set[str]) -> VerifyReport:
    bad_seq, problems = _check_chain(entries, head)
    if problems:
        return VerifyReport(ok=False, entries=len(entries), first_bad_seq=bad_seq, problems=problems)
    replayed, replay_open, bad_seq, problems = _replay(entries)
    if problems:
        return VerifyReport(ok=False, entries=len(entries), first_bad_seq=bad_seq, problems=problems)
    stored = {r.id: r for r in account_rows}
    for account_id in sorted(set(stored) | set(replayed)):
        row, acc = stored.get(account_id), replayed.get(account_id)
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
    if open_ids != replay_open:
        problems.append(f"open reservations differ from the journal ({len(open_ids)} stored, "
                        f"{len(replay_open)} per journal)")
    return VerifyReport(ok=not problems, entries=len(entries), problems=problems)
