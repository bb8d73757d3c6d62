"""A fault-injecting HTTP proxy placed in front of the real vLLM server (loopback only).

Each request takes the next mode from a queue (default "pass"):
  pass             forward to the server and relay its (streamed) answer
  429/500/400/...  answer that HTTP error without forwarding (the server never sees the request)
  delay:S          forward, let the server finish, then wait S seconds before answering (the client times out)
  malformed        forward, let the server finish, then answer 200 with broken JSON
  cut:K            forward, relay the first K SSE events, then drop the connection
  after:STATUS     forward, let the server finish (the work is done), then answer HTTP STATUS (408, 502, ...)
  strip-usage      forward and relay, but drop the usage report from the stream (a provider that sends none)
  reasoning        label every completion token a reasoning token in the usage (a reasoning model's report)
  reasoning-beyond:R  a reasoning model that thinks R tokens more than it shows. Told `max_tokens`, it bills those
                   R tokens beyond the limit (completion_tokens += R); told `max_completion_tokens`, it keeps them
                   inside the limit (the server is asked for R fewer visible tokens)
  cache-write      report every prompt token as written to the prompt cache (billed at the cache-write rate)
  tools-in-prompt  a provider whose chat template renders tools / functions / tool_choice / response_format into
                   the prompt: they are moved into a system message, so the real server tokenizes and bills them
With `served_model`, every request is sent to the server under that model name (so a differently named, differently
priced model — a fallback — reaches the same real server). It records every request body, what the server reported
as usage (`upstream_usage`) and what the client was told (`reported_usage`, after any rewriting) for every forwarded
request.
"""

from __future__ import annotations

import collections
import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import urlparse

UsageFix = Callable[[dict], "dict | None"]  # rewrites the usage the client sees (None: drop the report)


def _render_tools(request: dict) -> dict:
    """What a tool-rendering chat template does: the schemas become prompt text the model reads (and is billed)."""
    parts = {k: request.pop(k) for k in ("tools", "functions", "tool_choice", "response_format") if k in request}
    if parts:
        text = "You can call these tools. Answer with JSON.\n" + json.dumps(parts, indent=2)
        request["messages"] = [{"role": "system", "content": text}, *request.get("messages", [])]
    return request


def _reasoning_beyond(request: dict, hidden: int) -> tuple[dict, UsageFix]:
    limit = request.get("max_completion_tokens")
    if limit is not None:  # reasoning counts against max_completion_tokens: it stays inside the limit
        hidden = min(hidden, limit // 2)
        request["max_completion_tokens"] = limit - hidden
    return request, lambda u: {**u, "completion_tokens": u["completion_tokens"] + hidden,
                               "total_tokens": u.get("total_tokens", 0) + hidden,
                               "completion_tokens_details": {"reasoning_tokens": hidden}}


_USAGE_FIXES: dict[str, UsageFix] = {
    "strip-usage": lambda u: None,
    "reasoning": lambda u: {**u, "completion_tokens_details": {"reasoning_tokens": u["completion_tokens"]}},
    "cache-write": lambda u: {**u, "prompt_tokens_details": {"cached_tokens": 0,
                                                             "cache_write_tokens": u["prompt_tokens"]},
                              "cache_creation_input_tokens": u["prompt_tokens"]},
}


class FaultProxy:
    def __init__(self, upstream_root: str, served_model: str | None = None):
        up = urlparse(upstream_root)
        self.served_model = served_model
        self.upstream = (up.hostname, up.port)
        self.modes: collections.deque[str] = collections.deque()
        self.received = 0  # requests that reached the proxy on the completion endpoints
        self.forwarded = 0  # of those, how many reached the real server
        self.requests: list[dict] = []  # the completion request bodies, as the client sent them
        self.upstream_usage: list[dict] = []  # what the real server reported
        self.reported_usage: list[dict] = []  # what the client was told (after any rewriting)
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
                        proxy.requests.append(json.loads(body))
                if mode.isdigit():
                    return self._error(int(mode))
                kind, _, arg = mode.partition(":")
                fix = _USAGE_FIXES.get(kind)
                if completion and proxy.served_model:
                    body = json.dumps({**json.loads(body), "model": proxy.served_model}).encode()
                if kind == "tools-in-prompt":
                    body = json.dumps(_render_tools(json.loads(body))).encode()
                elif kind == "reasoning-beyond":
                    request, fix = _reasoning_beyond(json.loads(body), int(arg))
                    body = json.dumps(request).encode()
                with proxy._lock:
                    proxy.forwarded += int(completion)
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=300)
                conn.request(self.command, self.path, body=body,
                             headers={"Content-Type": self.headers.get("Content-Type", "application/json")})
                resp = conn.getresponse()
                if kind in ("delay", "malformed", "after"):
                    payload = resp.read()  # the server finished: the work is done (and billed)
                    proxy._record_usage(payload)
                    if kind == "malformed":
                        return self._send(200, b'data: {"id": "cmpl-1", "choices": [{"index": 0, "te\n\n',
                                          "text/event-stream")
                    if kind == "after":
                        return self._error(int(arg))
                    time.sleep(float(arg))
                    try:
                        return self._send(resp.status, payload, resp.getheader("Content-Type", "application/json"))
                    except OSError:
                        return  # the client gave up, as intended
                limit = int(arg) if kind == "cut" else None
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
                        line = proxy._rewrite_usage(line, fix)
                        if line is None:
                            continue
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

    def _rewrite_usage(self, line: bytes, fix: UsageFix | None) -> bytes | None:
        """The SSE line as the client gets it: its usage report rewritten by `fix` (or dropped), recorded."""
        text = line.decode().removeprefix("data:").strip()
        try:
            event = json.loads(text)
        except json.JSONDecodeError:
            return line
        usage = event.get("usage")
        if not usage:
            return line
        if fix is not None:
            usage = fix(usage)
            if usage is None and not event.get("choices"):
                return None  # a usage-only event: the provider never sends it
            event["usage"] = usage
            line = b"data: " + json.dumps(event).encode() + b"\n"
        if usage:
            with self._lock:
                self.reported_usage.append(usage)
        return line

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "FaultProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
