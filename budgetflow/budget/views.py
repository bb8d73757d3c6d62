"""Read-side views of the ledger (pydantic), in natural units."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from pydantic import BaseModel

from .limits import DIMENSIONS, Amounts, Budget, from_units


class AccountBalance(BaseModel):
    name: str
    parent: str | None
    budget: Budget
    reserved: Amounts
    committed: Amounts
    cap_units: dict[str, int | None]
    reserved_units: dict[str, int]
    committed_units: dict[str, int]

    @classmethod
    def from_row(cls, row, parent: str | None) -> "AccountBalance":
        caps = {d: getattr(row, f"cap_{d}") for d in DIMENSIONS}
        reserved = {d: getattr(row, f"reserved_{d}") for d in DIMENSIONS}
        committed = {d: getattr(row, f"committed_{d}") for d in DIMENSIONS}
        return cls(
            name=row.name, parent=parent, budget=Budget.from_units(caps),
            reserved=Amounts.from_units(reserved), committed=Amounts.from_units(committed),
            cap_units=caps, reserved_units=reserved, committed_units=committed,
        )

    def headroom_units(self) -> dict[str, int | None]:
        return {
            d: None if cap is None else cap - self.committed_units[d] - self.reserved_units[d]
            for d, cap in self.cap_units.items()
        }


class EntryView(BaseModel):
    seq: int
    time: str
    kind: str
    account: str
    reservation: str | None
    owner: str | None
    amounts: dict[str, float | int]
    note: str
    hash: str

    @classmethod
    def from_row(cls, row, account_name: str) -> "EntryView":
        payload = json.loads(row.payload)
        if row.kind == "open":
            amounts = {f"cap_{d}": from_units(d, u) for d, u in payload.get("caps", {}).items()}
        else:
            amounts = {d: from_units(d, u) for d, u in payload.items()}
        when = datetime.fromtimestamp(row.ts_us / 1e6, tz=timezone.utc).isoformat(timespec="milliseconds")
        return cls(
            seq=row.seq, time=when, kind=row.kind, account=account_name, reservation=row.reservation_id,
            owner=row.owner, amounts=amounts, note=row.note, hash=row.hash,
        )


class RecoveredReservation(BaseModel):
    reservation_id: str
    account: str
    owner: str
    charged: Amounts
