"""Real container registries on loopback for the image tests (and benchmarks/sync_bench.py).

Debian's ``docker-registry`` (the CNCF distribution registry 2.8) started as
``docker-registry serve config.yml`` on 127.0.0.1: one with TLS from a test CA and htpasswd
basic auth (bcrypt, from ``htpasswd -B``), one in plain HTTP. Images are pushed with
``skopeo copy`` (which gzips the layers, as a registry image has them). Nothing is faked:
tests skip, with the reason, when a tool is missing.

:class:`RegistryFront` is a small HTTP front on loopback, forwarding to a registry, for what
registry 2.8 does not do by itself: pages of the tag list (``?n=&last=`` and a ``Link`` header,
as Docker Hub and distribution 3 do) and HTTP 429 on demand. It records every request, so a
test can tell a re-sync that only sent ``HEAD``s.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from computeops_grid.bench.daemons import free_port

TOOLS = ("docker-registry", "skopeo", "openssl", "htpasswd")
USER, PASSWORD = "cops", "s3cret-Pa55word"


def require_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed (etc/deps/apt-images.txt: docker-registry, apache2-utils)"
        )


def _run(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-1000:]}")
    return proc.stdout


def make_ca(folder: Path) -> tuple[Path, Path, Path]:
    """(CA cert, server cert, server key) for 127.0.0.1, EC P-256, valid 2 days."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (
        folder / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt")
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _run(["openssl", "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
          "-subj", "/CN=cops-grid test registry CA"])  # fmt: skip
    _run(["openssl", "req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1"])
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
          "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext)])  # fmt: skip
    return ca, cert, key


@dataclass
class Registry:
    """One ``docker-registry serve`` on 127.0.0.1:``port``; storage and config under ``root``."""

    root: Path
    port: int
    tls: bool = False
    auth: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def certs_dir(self) -> Path:
        """A certs.d tree: ``<certs_dir>/<host>/ca.crt``, as /etc/containers/certs.d."""
        return self.root / "certs.d"

    def auth_json(self, path: Path, password: str = PASSWORD) -> Path:
        token = base64.b64encode(f"{USER}:{password}".encode()).decode()
        path.write_text(json.dumps({"auths": {self.host: {"auth": token}}}))
        return path

    def start(self, timeout: float = 20.0) -> Registry:
        log = (self.root / "registry.log").open("ab")
        # REGISTRY_* variables override the config (REGISTRY_AUTH_FILE, meant for the client, breaks it)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env["REGISTRY_HTTP_SECRET"] = "cops-test"
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(self.root / "config.yml")],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"docker-registry exited: {(self.root / 'registry.log').read_text()[-2000:]}"
                )
            try:
                conn = self._connection(timeout=1)
                conn.request("GET", "/v2/")
                status = conn.getresponse().status
                conn.close()
                if status in (200, 401):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on {self.host} within {timeout}s")

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if not self.tls:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        import ssl

        context = ssl.create_default_context(cafile=str(self.certs_dir / self.host / "ca.crt"))
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=context)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def push(self, oci: Path, name: str) -> None:
        """``skopeo copy oci:DIR docker://host/NAME`` (``name`` is ``repo:tag``)."""
        self.push_ref(oci, "", name)

    def push_ref(self, oci: Path, ref: str, name: str) -> None:
        """Push the image ``ref`` of the OCI layout ``oci`` (its only one when ``ref`` is "")."""
        argv = ["skopeo", "copy", "--quiet", "--retry-times", "2"]
        if self.tls:
            argv += ["--dest-cert-dir", str(self.certs_dir / self.host)]
        else:
            argv += ["--dest-tls-verify=false"]
        if self.auth:
            argv += ["--dest-creds", f"{USER}:{PASSWORD}"]
        _run([*argv, f"oci:{oci}:{ref}" if ref else f"oci:{oci}", f"docker://{self.host}/{name}"])


def start_registry(root: Path, *, tls: bool = False, auth: bool = False) -> Registry:
    """Write the config (TLS and htpasswd if asked) and start the registry."""
    root.mkdir(parents=True, exist_ok=True)
    registry = Registry(root, free_port(), tls=tls, auth=auth)
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
        "http": {"addr": registry.host},
    }
    if tls:
        ca, cert, key = make_ca(root / "pki")
        (registry.certs_dir / registry.host).mkdir(parents=True)
        shutil.copy(ca, registry.certs_dir / registry.host / "ca.crt")
        config["http"] = {"addr": registry.host, "tls": {"certificate": str(cert), "key": str(key)}}
    if auth:
        (root / "htpasswd").write_text(_run(["htpasswd", "-Bbn", USER, PASSWORD]))
        config["auth"] = {"htpasswd": {"realm": "cops-test", "path": str(root / "htpasswd")}}
    (root / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    return registry.start()


@dataclass
class RegistryFront:
    """An HTTP front on 127.0.0.1 for a plain-HTTP registry: pages the tag list, answers 429 on demand."""

    upstream: Registry
    page_size: int = 0  # > 0: the tag list comes in pages of at most this many tags
    throttle: int = 0  # answer this many next requests with 429 (Retry-After: 0)
    cut_blobs_over: int = 0  # > 0: a blob larger than this breaks off halfway (connection closed)
    requests: list[tuple[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> RegistryFront:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                front.handle(self)

            def do_HEAD(self) -> None:
                front.handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        self.requests.append((req.command, req.path))
        if self.throttle > 0:
            self.throttle -= 1
            self._reply(req, 429, {"Retry-After": "0"}, b'{"errors":[{"code":"TOOMANYREQUESTS"}]}')
            return
        url = urllib.parse.urlsplit(req.path)
        if self.page_size and url.path.endswith("/tags/list"):
            self._tag_page(req, url)
            return
        status, headers, body = self._forward(req.command, req.path, req)
        if self.cut_blobs_over and "/blobs/" in url.path and len(body) > self.cut_blobs_over:
            req.send_response(status)
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body[: len(body) // 2])
            req.wfile.flush()
            req.close_connection = True
            req.connection.shutdown(socket.SHUT_RDWR)
            return
        self._reply(req, status, headers, body)

    def _forward(
        self, method: str, path: str, req: BaseHTTPRequestHandler
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream.port, timeout=30)
        passed = {k: v for k, v in req.headers.items() if k.lower() in ("accept", "authorization")}
        conn.request(method, path, headers=passed)
        resp = conn.getresponse()
        body = resp.read()
        keep = ("content-type", "docker-content-digest", "www-authenticate", "content-length", "location")
        headers = {k: v for k, v in resp.getheaders() if k.lower() in keep}
        conn.close()
        return resp.status, headers, body

    def _tag_page(self, req: BaseHTTPRequestHandler, url: urllib.parse.SplitResult) -> None:
        status, headers, body = self._forward("GET", url.path, req)
        if status != 200:
            self._reply(req, status, headers, body)
            return
        doc = json.loads(body)
        query = urllib.parse.parse_qs(url.query)
        size = min(int(query.get("n", [self.page_size])[0]), self.page_size)
        tags = sorted(doc.get("tags") or [])
        last = query.get("last", [""])[0]
        rest = [t for t in tags if t > last] if last else tags
        page = rest[:size]
        extra = {"Content-Type": "application/json"}
        if len(rest) > size:
            extra["Link"] = f'<{url.path}?n={size}&last={page[-1]}>; rel="next"'
        self._reply(req, 200, extra, json.dumps({"name": doc["name"], "tags": page}).encode())

    @staticmethod
    def _reply(req: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        req.send_response(status)
        for key, value in headers.items():
            if key.lower() != "content-length":
                req.send_header(key, value)
        length = headers.get("Content-Length") or headers.get("content-length") or str(len(body))
        req.send_header("Content-Length", length if req.command == "HEAD" else str(len(body)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(body)
