"""A real gateway (uvicorn on a loopback port, in a thread) in front of the real vLLM server (SmolLM2 on the CPU),
spending on a real SQLite ledger; its keys are made with the public API."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from budgetflow import Budget, Ledger
from budgetflow.budget import create_key
from budgetflow.gateway import GatewaySettings, ModelPool, create_app
from tests.llm.conftest import ServerCounters

MODEL = "local/smollm2-135m"


class Gateway:
    def __init__(self, ledger: Ledger, engine, settings: GatewaySettings | None = None):
        import uvicorn

        self.ledger = ledger
        self.app = create_app(ledger, ModelPool(llms={MODEL: engine}), settings)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on",
                                                    timeout_graceful_shutdown=10))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "Gateway":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the gateway did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def key(self, account: str, usd: float | None = None, *, parent=None, **kwargs) -> str:
        if parent is not None:
            acct = parent.child(account, Budget(usd=usd) if usd is not None else None)
        else:
            acct = self.ledger.root(account, Budget(usd=usd))
        return create_key(self.ledger, acct, **kwargs)

    def post(self, path: str, key: str, body: dict, **kwargs) -> httpx.Response:
        return httpx.post(f"{self.base_url}{path}", json=body, headers={"authorization": f"Bearer {key}"},
                          timeout=120, **kwargs)


@pytest.fixture
def gateway(ledger, engine):
    with Gateway(ledger, engine) as gw:
        yield gw


@pytest.fixture(scope="session")
def counters(smol_server) -> ServerCounters:
    return ServerCounters(smol_server.root_url)
