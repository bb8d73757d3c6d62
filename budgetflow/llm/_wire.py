"""The OpenAI-compatible wire format as budgetflow speaks it to a vLLM server: request validation, server-sent
events, absorbing streamed chunks, and a connection another thread can shut (how a call is cut at its hold)."""

from __future__ import annotations

import json
import math
import threading
from typing import Iterator

from ._types import TokenLogprob


class Connection:
    """The socket of one request, caught as httpx opens it, so that the watchdog's thread can shut it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock = None
        self._shut = False

    def trace(self, event: str, info: dict) -> None:
        if event == "connection.connect_tcp.complete" and info.get("return_value") is not None:
            with self._lock:
                self._sock = info["return_value"].get_extra_info("socket")
                if self._shut:  # cut before the connection was even open
                    self._shutdown()

    def shut(self) -> None:
        with self._lock:
            self._shut = True
            self._shutdown()

    def _shutdown(self) -> None:
        try:
            if self._sock is not None:
                self._sock.shutdown(2)
        except OSError:
            pass


class Rejected(Exception):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail


def validate(n: int, max_tokens: int, temperature: float, top_p: float, logprobs: int | None) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be ≥ 0, got {temperature!r}")
    if not (0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    if logprobs is not None and not (0 <= logprobs <= 20):
        raise ValueError(f"logprobs (top alternatives per token) must be between 0 and 20, got {logprobs!r}")


def sse_events(lines: Iterator[str]) -> Iterator[dict]:
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


def absorb(choice: dict, chat: bool, text: list[str], lps: list[TokenLogprob]) -> None:
    if chat:
        text.append((choice.get("delta") or {}).get("content") or "")
        for item in ((choice.get("logprobs") or {}).get("content") or []):
            top = {t["token"]: t["logprob"] for t in item.get("top_logprobs") or []}
            lps.append(TokenLogprob(token=item["token"], logprob=item["logprob"], top=top))
    else:
        text.append(choice.get("text") or "")
        lp = choice.get("logprobs") or {}
        tops = lp.get("top_logprobs") or [None] * len(lp.get("tokens") or [])
        for token, logprob, top in zip(lp.get("tokens") or [], lp.get("token_logprobs") or [], tops):
            lps.append(TokenLogprob(token=token, logprob=logprob if logprob is not None else 0.0, top=top or {}))
