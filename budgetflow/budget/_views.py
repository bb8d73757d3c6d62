"""Read-side views of the ledger (pydantic), in natural units."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from pydantic import BaseModel

from ._limits import DIMENSIONS, Amounts, Budget, from_units


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

    @property
    def left(self) -> Amounts:
        """What this account alone may still reserve (its cap less what it committed and holds); uncapped
        quantities read 0 here — use `Account.remaining()` for the tightest cap above."""
        return Amounts.from_units({d: max(0, h) for d, h in self.headroom_units().items() if h is not None})

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


class SpendIndex:
    """Spend split by part, for many accounts from one ledger read: `parts(name)` is {"total": the account's spend,
    "<part>": each direct sub-account `<name>/<part>` (its full name when named otherwise), "direct": what was
    charged on the account itself, if anything}. The one way a task's spend is read."""

    def __init__(self, balances: list[AccountBalance]):
        self.by_name = {b.name: b for b in balances}
        self.children: dict[str | None, list[AccountBalance]] = {}
        for b in balances:
            self.children.setdefault(b.parent, []).append(b)

    def parts(self, name: str) -> dict[str, Amounts]:
        mine = self.by_name.get(name)
        if mine is None:
            return {}
        out: dict[str, Amounts] = {"total": mine.committed}
        rest = dict(mine.committed_units)
        for child in self.children.get(name, []):
            part = child.name.removeprefix(name + "/").split("/", 1)[0] or child.name
            out[part] = child.committed
            for d, u in child.committed_units.items():
                rest[d] -= u
        if any(u > 0 for u in rest.values()):
            out["direct"] = Amounts.from_units({d: max(u, 0) for d, u in rest.items()})
        return out


def usd_share(holder: AccountBalance, open_children: list[AccountBalance], weight: int, among: int) -> Budget:
    """An equal-share cap in dollars: of what `holder` has not spent and has not already promised to its still-open
    children (each child's cap less its spend), the part `weight / among`, rounded down (a share never promises
    money that is not there). Uncapped holder: no cap."""
    cap = holder.cap_units["usd"]
    if cap is None:
        return Budget()
    promised = sum(max(0, c.cap_units["usd"] - c.committed_units["usd"]) for c in open_children
                   if c.cap_units["usd"] is not None)
    free = max(0, cap - holder.committed_units["usd"] - promised)
    return Budget.from_units({"usd": free * weight // max(1, among)})
