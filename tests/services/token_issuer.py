"""A WLCG/SciTokens token issuer on loopback, as a CE's token validation sees one.

A test CA signs a TLS certificate for 127.0.0.1 (and ``localhost``, and the CE host name);
an HTTPS server on 127.0.0.1 serves ``/.well-known/openid-configuration`` and its JWKS (one
EC P-256 key); :meth:`TokenIssuer.token` signs ES256 tokens with the WLCG profile's claims.
The same CA signs the CE's host certificate (:meth:`TokenIssuer.host_cert`), so a client
that trusts ``ca_file`` trusts both.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import json
import socket
import ssl
import subprocess
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

KID = "cops-test-key"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cops-grid tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])  # fmt: skip


def _builder(
    subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
    builder = builder.serial_number(x509.random_serial_number())
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
        now + datetime.timedelta(days=days)
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    path.write_bytes(pem)
    path.chmod(0o600)


class TestCA:
    """A self-signed CA that issues server certificates (files under ``directory``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        usage = x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False,
        )  # fmt: skip
        builder = _builder(
            _name("cops-grid test CA"), _name("cops-grid test CA"), self.key.public_key(), days=2
        )
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        self.cert = builder.add_extension(usage, critical=True).sign(self.key, hashes.SHA256())
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def server_cert(self, name: str, hosts: list[str]) -> tuple[Path, Path]:
        """(certificate, key) for ``hosts`` (DNS names and IP addresses), signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        purposes = [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = _builder(_name(hosts[0]), self.cert.subject, key.public_key(), days=1)
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_file, key_file = self.directory / f"{name}.pem", self.directory / f"{name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_file)
        return cert_file, key_file


class TokenIssuer:
    """The issuer ``https://127.0.0.1:<port>``: discovery document, JWKS and signed tokens.

    The HTTPS server is a process of its own: the HTCondor bindings hold the GIL while they
    wait for the CE, and the CE fetches the issuer's keys during that very call.
    """

    def __init__(self, directory: Path, hosts: list[str]) -> None:
        self.ca = TestCA(directory)
        self.key = ec.generate_private_key(ec.SECP256R1())
        cert, key = self.ca.server_cert("issuer", ["127.0.0.1", "localhost", *hosts])
        numbers = self.key.public_key().public_numbers()
        point = {"x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}
        jwks = {"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KID, **point}]}
        port = _free_port()
        self.url = f"https://127.0.0.1:{port}"
        docs = directory / "issuer-docs"
        docs.mkdir()
        discovery = {"issuer": self.url, "jwks_uri": f"{self.url}/jwks"}
        (docs / "openid-configuration").write_text(json.dumps(discovery))
        (docs / "jwks").write_text(json.dumps(jwks))
        self.log = directory / "issuer-requests.log"
        self.log.touch()
        argv = [sys.executable, __file__, str(port), str(cert), str(key), str(docs), str(self.log)]
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the token issuer did not start on 127.0.0.1:{port}")

    @property
    def requests(self) -> list[str]:
        """The paths the issuer served (a CE fetching its keys shows up here)."""
        return self.log.read_text().split()

    def token(self, sub: str, *, audience: str, scope: str, lifetime: float = 3600, **claims: object) -> str:
        now = int(time.time())
        payload = {"iss": self.url, "sub": sub, "aud": audience, "scope": scope, "wlcg.ver": "1.0",
                   "iat": now, "nbf": now - 60, "exp": int(now + lifetime),
                   "jti": str(uuid.uuid4())}  # fmt: skip
        payload.update(claims)
        header = {"alg": "ES256", "typ": "JWT", "kid": KID}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PATHS = {"/.well-known/openid-configuration": "openid-configuration", "/jwks": "jwks"}


def serve(port: int, cert: str, key: str, docs: str, log: str) -> None:
    """The issuer's HTTPS server (127.0.0.1 only): the two documents, each request logged."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with open(log, "a") as handle:
                handle.write(self.path + "\n")
            name = PATHS.get(self.path)
            body = (Path(docs) / name).read_bytes() if name else b"{}"
            self.send_response(200 if name else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), *sys.argv[2:6])
