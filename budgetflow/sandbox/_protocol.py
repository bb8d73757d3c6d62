"""Framing between the client and a helper runner: 8-byte length + pickle.

Both ends are trusted code we wrote (client -> root helper; the helper builds the
reply itself, untrusted output only travels as bytes values), so pickle is fine.
Stdlib only: imported by the helper as a top-level module too.
"""
from __future__ import annotations

import pickle
import struct
from typing import Any

_HDR = struct.Struct("!Q")
MAX_MESSAGE = 1 << 31
# worker uid = UID_BASE + (zygote pid << 8) + free index (< 256): unique among live workers, in no passwd file
UID_BASE = 1_000_000


def send_msg(sock: Any, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HDR.pack(len(data)) + data)


def _recv_exact(sock: Any, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError(f"peer closed after {got} of {n} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_msg(sock: Any) -> Any:
    (n,) = _HDR.unpack(_recv_exact(sock, _HDR.size))
    if n > MAX_MESSAGE:
        raise ValueError(f"message of {n} bytes is too large")
    return pickle.loads(_recv_exact(sock, n))


def send_msg_fd(sock: Any, obj: Any, fd: int) -> None:
    """send_msg with a file descriptor riding on the first byte (SCM_RIGHTS)."""
    import socket as _socket

    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    frame = _HDR.pack(len(data)) + data
    sent = sock.sendmsg([frame[:1]], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", fd))])
    sock.sendall(frame[sent:])


def recv_msg_fd(sock: Any) -> tuple[Any, int | None]:
    import socket as _socket

    first, anc, _flags, _addr = sock.recvmsg(1, _socket.CMSG_SPACE(struct.calcsize("i")))
    if not first:
        raise EOFError("peer closed")
    fd = None
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fd = struct.unpack("i", data[:4])[0]
    (n,) = _HDR.unpack(first + _recv_exact(sock, _HDR.size - 1))
    if n > MAX_MESSAGE:
        raise ValueError(f"message of {n} bytes is too large")
    return pickle.loads(_recv_exact(sock, n)), fd
