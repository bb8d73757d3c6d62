"""Running the gateway: uvicorn on loopback by default, a graceful stop that lets in-flight calls settle, and the
local engines it started stopped after."""

from __future__ import annotations

import signal
import threading
from typing import Callable

from ..budget import Ledger
from ..llm import shutdown
from ._app import create_app
from ._pool import ModelPool
from ._settings import GatewaySettings


def serve(ledger_url: str, pool: ModelPool, settings: GatewaySettings | None = None, *, host: str = "127.0.0.1",
          port: int = 8787, drain_s: float = 30.0, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM. On a stop, new connections are refused and calls in flight get `drain_s` seconds
    to finish; any still running then are cut and charged what they used. A SIGKILL leaves reservations open: the
    ledger settles them as reserved the next time it is opened (``budgetflow ledger recover``)."""
    import uvicorn

    ledger = Ledger(ledger_url)
    try:
        app = create_app(ledger, pool, settings)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=drain_s, lifespan="on")
        server = uvicorn.Server(config)
        if on_ready is not None:
            original = server.startup

            async def startup(sockets=None):
                await original(sockets)
                on_ready(f"http://{host}:{port}/v1")

            server.startup = startup  # type: ignore[method-assign]
        # uvicorn drains on SIGTERM/SIGINT, then re-raises the signal to end the process: turn that last step into
        # an exception here, so the engines this gateway started are stopped and the ledger closed
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _stop) if main else None
        try:
            server.run()
        except (_Stopped, KeyboardInterrupt):
            pass
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)
    finally:
        shutdown()
        ledger.close()


class _Stopped(Exception):
    pass


def _stop(signum, frame) -> None:
    raise _Stopped()
