"""An HTTP relay in front of a real service that can lose one answer.

It stands in for a network that fails after the service accepted a request. In front of
A-REX it terminates TLS: the client talks TLS to the relay (the test CA's host
certificate, the CE's own name), the relay forwards each request unchanged to the CE
with the user's proxy as its client certificate. Without certificates it relays plain
HTTP (DiracX on 127.0.0.1), and it can listen on and forward to unix sockets (the Docker
Engine API). With :meth:`drop_reply_to` armed, the next matching request is forwarded
and fully answered by the service, then the client gets none of that answer: its
connection is closed, or (``answer=504``) it gets a bodiless error status, as from a
gateway that gave up waiting. The service has the job, the client cannot know.

It listens on 127.0.0.1 (or a unix socket) only. Every request it saw is in
:attr:`Relay.seen`, in order, so a test sees a client library repeat a request.

A plain TCP relay cannot do this: A-REX answers the submit on a fresh connection, so
"drop the first server bytes" dropped the TLS handshake instead of the reply.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import socketserver
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


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _UnixConnection(http.client.HTTPConnection):
    """HTTP to a unix socket (the Docker Engine API)."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self.path))
        self.sock = sock


class Relay:
    """Forwards to ``target`` (host and port, or a unix socket's path).

    TLS towards the client with ``host_cert``/``host_key``, towards the target with
    ``ca_dir`` (and ``proxy`` as client certificate); ``listen`` is a unix socket to
    listen on instead of a free port on 127.0.0.1.
    """

    def __init__(
        self,
        target: tuple[str, int] | Path,
        *,
        proxy: Path | None = None,
        host_cert: Path | None = None,
        host_key: Path | None = None,
        ca_dir: Path | None = None,
        listen: Path | None = None,
    ) -> None:
        self.target = target
        self.listen = listen
        self.dropped: list[str] = []
        self.forwarded: list[str] = []
        self.seen: list[str] = []  # "METHOD path" of every request, in order
        self._drop: tuple[str, str, int | None] | None = None
        self._down_after: tuple[str, str] | None = None
        self._lock = threading.Lock()
        self._upstream: ssl.SSLContext | None = None
        if ca_dir is not None:
            self._upstream = ssl.create_default_context(capath=str(ca_dir))
            if proxy is not None:
                self._upstream.load_cert_chain(str(proxy))
        self.server: socketserver.BaseServer
        if listen is not None:
            self.server = _UnixHTTPServer(str(listen), _handler(self))
            self.port = 0
        else:
            tcp = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
            tcp.daemon_threads = True
            if host_cert is not None:
                server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                server_ctx.load_cert_chain(str(host_cert), str(host_key or host_cert))
                tcp.socket = server_ctx.wrap_socket(tcp.socket, server_side=True)
            self.server = tcp
            self.port = int(tcp.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def drop_reply_to(self, method: str, path_contains: str, *, answer: int | None = None) -> None:
        """Arm: the next ``method`` request whose path contains ``path_contains`` loses its answer
        (the connection is closed; with ``answer``, that bodiless status is sent instead)."""
        with self._lock:
            self._drop = (method, path_contains, answer)

    def down_after_reply_to(self, method: str, path_contains: str) -> None:
        """Arm: once the next matching request is answered, the relay goes down (the service
        accepted it and became unreachable: the client's next request is refused)."""
        with self._lock:
            self._down_after = (method, path_contains)

    def _goes_down(self, method: str, path: str) -> bool:
        with self._lock:
            if self._down_after and self._down_after[0] == method and self._down_after[1] in path:
                self._down_after = None
                return True
            return False

    def requests(self, method: str, path_contains: str) -> int:
        """How many ``method`` requests whose path contains ``path_contains`` the relay saw."""
        return sum(s.startswith(f"{method} ") and path_contains in s for s in self.seen)

    def _should_drop(self, method: str, path: str) -> tuple[bool, int | None]:
        with self._lock:
            if self._drop and self._drop[0] == method and self._drop[1] in path:
                answer = self._drop[2]
                self._drop = None
                return True, answer
            return False, None

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> _Answer:
        """One request to the target on a fresh connection; the whole answer."""
        conn: http.client.HTTPConnection
        if isinstance(self.target, Path):
            conn = _UnixConnection(self.target, timeout=60)
        elif self._upstream is not None:
            conn = http.client.HTTPSConnection(*self.target, context=self._upstream, timeout=60)
        else:
            conn = http.client.HTTPConnection(*self.target, timeout=60)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            return _Answer(response.status, response.reason, response.getheaders(), response.read())
        finally:
            conn.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.listen is not None:
            with contextlib.suppress(FileNotFoundError):
                self.listen.unlink()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, by Content-Length or chunked (the Docker SDK streams files)."""
    if handler.headers.get("Transfer-Encoding", "").lower() != "chunked":
        return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    body = b""
    while True:
        size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while handler.rfile.readline().strip():  # trailers, then the empty line
                pass
            return body
        body += handler.rfile.read(size)
        handler.rfile.readline()


def _handler(relay: Relay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def address_string(self) -> str:  # a unix socket's peer has no host
            return "relay-client"

        def _relay(self) -> None:
            body = _read_body(self)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            headers["Content-Length"] = str(len(body))
            relay.seen.append(f"{self.command} {self.path}")
            answer = relay.forward(self.command, self.path, headers, body)  # the target has answered
            payload = answer.body
            drop, instead = relay._should_drop(self.command, self.path)
            if drop:
                relay.dropped.append(f"{self.command} {self.path} -> {answer.status}")
                self.close_connection = True
                if instead is not None:
                    self.send_response(instead)
                    self.send_header("Content-Length", "0")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    return
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            relay.forwarded.append(f"{self.command} {self.path} -> {answer.status}")
            down = relay._goes_down(self.command, self.path)
            if down:  # refuse connections before the client can make its next request (the
                relay.server.shutdown()  # serving loop first: its poll keeps the listener alive)
                relay.server.server_close()
            self.send_response(answer.status, answer.reason)
            for key, value in answer.headers:
                if key.lower() not in _HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            if down:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(payload)
            if down:  # and this connection ends with the answer: the client's next one is refused
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _relay

    return Handler
