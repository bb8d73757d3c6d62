"""What a gateway enforces besides the budget: body size, per-key concurrency, defaults, the refusal status."""

from __future__ import annotations

from pydantic import BaseModel, Field


class GatewaySettings(BaseModel):
    max_body_bytes: int = Field(4 << 20, gt=0)  # a request body larger than this is refused (413) unread
    per_key_concurrency: int = Field(16, gt=0)  # calls in flight per key
    per_key_queue: int = Field(64, ge=0)  # calls waiting for a slot per key; beyond, 429
    default_max_tokens: int = Field(1024, gt=0)  # when a request names no max_tokens (reserved as its worst case)
    refusal_status: int = 402  # HTTP status of a budget refusal: 402, or 429 / 403 for clients that need it
    admin_token: str | None = None  # the spend page at / is served only with this token (None: no page)
