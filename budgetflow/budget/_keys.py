"""API keys that spend on ledger accounts (the gateway's callers). A key is shown once, when created; the ledger keeps
only the SHA-256 of its secret, compared in constant time. Each key names one account: its cap (and every cap above
it) binds everything the key spends."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time

from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, Text, text
from sqlmodel import Field, SQLModel

from ._account import Account
from ._errors import BudgetError

PREFIX = "bfk"


class ApiKeyRow(SQLModel, table=True):
    __tablename__ = "bf_api_key"

    id: str = Field(primary_key=True)  # public part of the key: names it in lists and logs
    secret_sha256: str
    account_id: int = Field(index=True)
    label: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_us: int = Field(sa_type=BigInteger)
    expires_us: int | None = Field(default=None, sa_type=BigInteger)
    revoked_us: int | None = Field(default=None, sa_type=BigInteger)


class KeyRefused(BudgetError):
    """The key is unknown, malformed, revoked or expired (said without telling which secret was tried)."""


class ApiKey(BaseModel):
    id: str
    account: str
    label: str
    created: dt.datetime
    expires: dt.datetime | None
    revoked: dt.datetime | None

    @property
    def active(self) -> bool:
        now = dt.datetime.now(dt.timezone.utc)
        return self.revoked is None and (self.expires is None or self.expires > now)


def _ensure_table(ledger) -> None:
    """Ledgers made before keys existed get the table on first use (creating it is idempotent)."""
    if not getattr(ledger, "_keys_ready", False):
        ApiKeyRow.__table__.create(ledger.engine, checkfirst=True)
        ledger._keys_ready = True


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _when(us: int | None) -> dt.datetime | None:
    return None if us is None else dt.datetime.fromtimestamp(us / 1e6, tz=dt.timezone.utc)


def create_key(ledger, account: Account, *, label: str = "", expires: dt.datetime | None = None) -> str:
    """A new key spending on `account`; returns the whole key (`bfk_<id>_<secret>`), which is never stored."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    if expires is not None and expires.tzinfo is None:
        raise ValueError("expires needs a time zone (e.g. 2026-12-31T00:00:00+00:00)")
    _ensure_table(ledger)
    row = dict(id=key_id, secret_sha256=_digest(secret), account_id=account.id, label=label,
               created_us=time.time_ns() // 1000,
               expires_us=None if expires is None else int(expires.timestamp() * 1e6))
    with ledger._write() as tx:
        tx.execute("INSERT INTO bf_api_key (id, secret_sha256, account_id, label, created_us, expires_us)"
                   " VALUES (:id, :secret_sha256, :account_id, :label, :created_us, :expires_us)", row)
    return f"{PREFIX}_{key_id}_{secret}"


def authenticate(ledger, token: str) -> tuple[ApiKey, Account]:
    """The key and its account, or KeyRefused. The secret is compared by digest in constant time."""
    parts = (token or "").strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        raise KeyRefused("invalid API key: expected bfk_<id>_<secret> (create one with `budgetflow keys create`)")
    _, key_id, secret = parts
    _ensure_table(ledger)
    with ledger._read() as conn:
        row = conn.execute(text("SELECT k.*, a.name AS account FROM bf_api_key k JOIN bf_account a "
                                "ON a.id = k.account_id WHERE k.id = :i"), {"i": key_id}).one_or_none()
    expected = row.secret_sha256 if row is not None else _digest(secrets.token_urlsafe(32))
    if not hmac.compare_digest(expected, _digest(secret)) or row is None:
        raise KeyRefused("invalid API key")
    key = _view(row)
    if key.revoked is not None:
        raise KeyRefused(f"API key {key_id} was revoked")
    if not key.active:
        raise KeyRefused(f"API key {key_id} expired on {key.expires:%Y-%m-%d %H:%M} UTC")
    return key, ledger.account(key.account)


def _view(row) -> ApiKey:
    return ApiKey(id=row.id, account=row.account, label=row.label, created=_when(row.created_us),
                  expires=_when(row.expires_us), revoked=_when(row.revoked_us))


def list_keys(ledger) -> list[ApiKey]:
    _ensure_table(ledger)
    with ledger._read() as conn:
        rows = conn.execute(text("SELECT k.*, a.name AS account FROM bf_api_key k JOIN bf_account a "
                                 "ON a.id = k.account_id ORDER BY k.created_us")).all()
    return [_view(r) for r in rows]


def revoke_key(ledger, key_id: str) -> ApiKey:
    """Revoke the key `key_id` (its id, or the whole key); KeyRefused if there is none."""
    key_id = key_id.split("_")[1] if key_id.startswith(PREFIX + "_") else key_id
    _ensure_table(ledger)
    with ledger._write() as tx:
        tx.execute("UPDATE bf_api_key SET revoked_us = :t WHERE id = :i AND revoked_us IS NULL",
                   {"t": time.time_ns() // 1000, "i": key_id})
    found = [k for k in list_keys(ledger) if k.id == key_id]
    if not found:
        raise KeyRefused(f"no API key {key_id!r} in {ledger.url}")
    return found[0]
