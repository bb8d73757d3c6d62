"""A loopback bridge into a network namespace the test creates: the host's 127.0.0.1:PORT (the session's vLLM and
PostgreSQL servers) appears as 127.0.0.1:PORT inside the namespace, through a Unix socket (the file system is shared
across network namespaces; the network is not). Bytes are pumped both ways; nothing but loopback is ever involved.

Why a namespace: Ray replaces a node address of 127.0.0.1 by the machine's outward-facing address
(services.resolve_ip_for_localhost) whenever one exists, so a "loopback" cluster would talk over eth0's address. In a
namespace that has only `lo`, Ray finds no such address and everything stays on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import threading


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _splice(a: socket.socket, b: socket.socket) -> None:
    t1 = threading.Thread(target=_pump, args=(a, b), daemon=True)
    t2 = threading.Thread(target=_pump, args=(b, a), daemon=True)
    t1.start()
    t2.start()

    def close_when_done():
        t1.join()
        t2.join()
        a.close()
        b.close()

    threading.Thread(target=close_when_done, daemon=True).start()


class _Forwarder:
    def __init__(self, listener: socket.socket, connect):
        self.listener = listener
        self.connect = connect
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                peer = self.connect()
            except OSError:
                conn.close()
                continue
            _splice(conn, peer)

    def close(self) -> None:
        self.listener.close()


def unix_to_tcp(path: str, port: int) -> _Forwarder:
    """Host side: connections to the Unix socket `path` go to 127.0.0.1:`port`."""
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    def connect():
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.settimeout(None)  # idle connections (a pooled database connection) must stay open
        return s

    return _Forwarder(listener, connect)


def tcp_to_unix(port: int, path: str) -> _Forwarder:
    """Namespace side: connections to 127.0.0.1:`port` go to the Unix socket `path`."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)

    def connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        return s

    return _Forwarder(listener, connect)
