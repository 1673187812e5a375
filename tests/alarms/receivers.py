"""Local HTTP servers playing DingTalk's robot and Slack's incoming webhook for the alarm tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    kind: str
    secret: str | None = None
    fail_first: int = 0
    """Answer 500 to this many requests before accepting."""
    received: list[Any] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    """Headers of each accepted request (lower-case names)."""
    raw: list[bytes] = field(default_factory=list)
    """Body bytes of each accepted request, as sent (a signature covers these)."""
    rejected: list[str] = field(default_factory=list)
    hits: int = 0
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        with self.lock:
            self.hits += 1
            if self.hits <= self.fail_first:
                return 500, b"down"
        if self.kind == "dingtalk":
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            if self.secret is not None and not _dingtalk_sign_ok(query, self.secret):
                self.rejected.append(path)
                return 200, json.dumps({"errcode": 310000, "errmsg": "sign not match"}).encode()
            self._accept(body, headers)
            return 200, json.dumps({"errcode": 0, "errmsg": "ok"}).encode()
        self._accept(body, headers)
        return 200, b"ok"

    def _accept(self, body: bytes, headers: dict[str, str] | None) -> None:
        with self.lock:
            self.received.append(json.loads(body))
            self.raw.append(body)
            self.headers.append(headers or {})


def _dingtalk_sign_ok(query: dict[str, list[str]], secret: str) -> bool:
    """DingTalk's own check: HMAC-SHA256 over `timestamp + "\\n" + secret`, base64; `sign` arrives
    URL-encoded in the query (parse_qs has decoded it once). DingTalk also refuses a timestamp
    more than an hour away from its clock."""
    if "timestamp" not in query or "sign" not in query:
        return False
    timestamp = query["timestamp"][0]
    if abs(int(timestamp) - time.time() * 1000) > 3_600_000:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest())
    return hmac.compare_digest(expected.decode(), query["sign"][0])


@contextmanager
def serve(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, reply = receiver.answer(self.path, body, headers)
            self.send_response(status)
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/robot/send?access_token=abc"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
