"""A TLS-terminating HTTP relay in front of a real A-REX that can lose one answer.

It stands in for a network that fails after the CE accepted a request: the client
talks TLS to the relay (the test CA's host certificate, the CE's own name), the relay
forwards each request unchanged to the CE with the user's proxy as its client
certificate, and returns the CE's answer. With :meth:`drop_reply_to` armed, the next
matching request is forwarded and fully answered by the CE, then the client's
connection is closed without a byte of that answer: the CE has the job, the client
cannot know.

A plain TCP relay cannot do this: A-REX answers the submit on a fresh connection, so
"drop the first server bytes" dropped the TLS handshake instead of the reply.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@dataclass
class _Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class Relay:
    def __init__(
        self, target: tuple[str, int], *, proxy: Path, host_cert: Path, host_key: Path, ca_dir: Path
    ) -> None:
        self.target = target
        self.dropped: list[str] = []
        self.forwarded: list[str] = []
        self._drop: tuple[str, str] | None = None
        self._lock = threading.Lock()
        self._upstream = ssl.create_default_context(capath=str(ca_dir))
        self._upstream.load_cert_chain(str(proxy))
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(str(host_cert), str(host_key))
        self.server = ThreadingHTTPServer(("", 0), _handler(self))
        self.server.daemon_threads = True
        self.server.socket = server_ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def drop_reply_to(self, method: str, path_contains: str) -> None:
        """Arm: the next ``method`` request whose path contains ``path_contains`` loses its answer."""
        with self._lock:
            self._drop = (method, path_contains)

    def _should_drop(self, method: str, path: str) -> bool:
        with self._lock:
            if self._drop and self._drop[0] == method and self._drop[1] in path:
                self._drop = None
                return True
            return False

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> _Answer:
        """One request to the CE on a fresh connection; the whole answer."""
        conn = http.client.HTTPSConnection(*self.target, context=self._upstream, timeout=60)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            return _Answer(response.status, response.reason, response.getheaders(), response.read())
        finally:
            conn.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(relay: Relay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            headers["Content-Length"] = str(len(body))
            answer = relay.forward(self.command, self.path, headers, body)  # the CE has answered
            payload = answer.body
            if relay._should_drop(self.command, self.path):
                relay.dropped.append(f"{self.command} {self.path} -> {answer.status}")
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            relay.forwarded.append(f"{self.command} {self.path} -> {answer.status}")
            self.send_response(answer.status, answer.reason)
            for key, value in answer.headers:
                if key.lower() not in _HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay

    return Handler
