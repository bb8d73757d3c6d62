"""Hash chain of ledger entries: each entry's hash covers its content and the previous entry's hash."""

from __future__ import annotations

import hashlib
import json
from typing import Mapping


def canonical_amounts(units: Mapping[str, int]) -> str:
    return json.dumps({k: int(v) for k, v in units.items() if v}, sort_keys=True, separators=(",", ":"))


def entry_hash(
    *,
    prev_hash: str,
    seq: int,
    ts_us: int,
    kind: str,
    account_id: int,
    reservation_id: str | None,
    owner: str | None,
    payload: str,
    note: str,
) -> str:
    blob = json.dumps(
        [prev_hash, seq, ts_us, kind, account_id, reservation_id, owner, payload, note],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()
