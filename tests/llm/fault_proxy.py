"""A fault-injecting HTTP proxy placed in front of the real vLLM server (loopback only).

Each request takes the next mode from a queue (default "pass"):
  pass         forward to the server and relay its (streamed) answer
  429/500/400  answer that HTTP error without forwarding (the server never sees the request)
  delay:S      forward, let the server finish, then wait S seconds before answering (the client times out)
  malformed    forward, let the server finish, then answer 200 with broken JSON
  cut:K        forward, relay the first K SSE events, then drop the connection
It records what the server reported as usage for every forwarded request.
"""

from __future__ import annotations

import collections
import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


class FaultProxy:
    def __init__(self, upstream_root: str):
        up = urlparse(upstream_root)
        self.upstream = (up.hostname, up.port)
        self.modes: collections.deque[str] = collections.deque()
        self.received = 0  # requests that reached the proxy on the completion endpoints
        self.forwarded = 0  # of those, how many reached the real server
        self.upstream_usage: list[dict] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                self._forward(None)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._forward(body)

            def _forward(self, body):
                completion = self.path.endswith("completions")
                mode = "pass"
                if completion:
                    with proxy._lock:
                        proxy.received += 1
                        mode = proxy.modes.popleft() if proxy.modes else "pass"
                if mode in ("429", "500", "400"):
                    return self._error(int(mode))
                with proxy._lock:
                    proxy.forwarded += int(completion)
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=300)
                conn.request(self.command, self.path, body=body,
                             headers={"Content-Type": self.headers.get("Content-Type", "application/json")})
                resp = conn.getresponse()
                if mode.startswith("delay:") or mode == "malformed":
                    payload = resp.read()
                    proxy._record_usage(payload)
                    if mode == "malformed":
                        return self._send(200, b'data: {"id": "cmpl-1", "choices": [{"index": 0, "te\n\n',
                                          "text/event-stream")
                    time.sleep(float(mode.split(":")[1]))
                    try:
                        return self._send(resp.status, payload, resp.getheader("Content-Type", "application/json"))
                    except OSError:
                        return  # the client gave up, as intended
                limit = int(mode.split(":")[1]) if mode.startswith("cut:") else None
                self.send_response(resp.status)
                self.send_header("Content-Type", resp.getheader("Content-Type", "application/json"))
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                events = 0
                for line in resp:
                    if limit is not None and line.startswith(b"data:"):
                        events += 1
                        if events > limit:
                            self.wfile.flush()
                            self.close_connection = True
                            self.connection.shutdown(2)  # drop it mid-stream, no terminating chunk
                            resp.read()  # let the server finish the request
                            return
                    if b'"usage"' in line:
                        proxy._record_usage(line)  # before the client can see it: no race with the test
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            def _error(self, status):
                body = json.dumps({"error": {"message": f"injected HTTP {status}", "type": "injected",
                                             "code": status}}).encode()
                self._send(status, body, "application/json")

            def _send(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _record_usage(self, payload: bytes) -> None:
        usage = None
        for line in payload.splitlines():
            text = line.decode(errors="replace").removeprefix("data:").strip()
            if text.startswith("{"):
                try:
                    usage = json.loads(text).get("usage") or usage
                except json.JSONDecodeError:
                    pass
        if usage:
            with self._lock:
                self.upstream_usage.append(usage)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "FaultProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
