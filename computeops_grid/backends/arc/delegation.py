"""Delegation to an ARC CE: sign the CE's CSR with the user's proxy into an RFC 3820 proxy.

A-REX 6 sends a CSR whose version field is 2 (invalid; ``cryptography`` refuses it), so
the version byte is set to 0 before parsing: only the public key is taken from the CSR,
its self-signature is not needed.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID, ObjectIdentifier

from computeops_grid.errors import CredentialError

PROXY_CERT_INFO = ObjectIdentifier("1.3.6.1.5.5.7.1.14")
# ProxyCertInfo { pCPathLenConstraint absent, proxyPolicy { id-ppl-inheritAll } }
INHERIT_ALL = bytes.fromhex("300c300a06082b06010505071501")


@dataclass(frozen=True)
class ProxyChain:
    """The user's proxy file: its certificate, its key and the chain up to the user cert."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes
    chain: list[x509.Certificate]


def load_proxy(path: Path) -> ProxyChain:
    try:
        data = path.read_bytes()
        certs = x509.load_pem_x509_certificates(data)
        key = serialization.load_pem_private_key(data, password=None)
    except (OSError, ValueError) as exc:
        raise CredentialError(
            f"cannot load the proxy {path}: {exc}", hint="create a proxy with `cops-grid proxy init`"
        ) from None
    if not isinstance(key, CertificateIssuerPrivateKeyTypes.__args__):  # type: ignore[attr-defined]
        raise CredentialError(f"the proxy key in {path} cannot sign certificates")
    return ProxyChain(cert=certs[0], key=key, chain=certs[1:])


def _fix_csr_version(pem: bytes) -> bytes:
    """DER of the CSR with its version field forced to 0 (v1), the only valid value."""
    text = pem.decode("ascii", errors="replace")
    body = "".join(line for line in text.splitlines() if line and not line.startswith("-----"))
    raw = bytearray(base64.b64decode(body))
    index = raw.find(b"\x02\x01\x02", 0, 12)  # version INTEGER 2 inside CertificationRequestInfo
    if index != -1:
        raw[index + 2] = 0
    return bytes(raw)


def sign_csr(csr_pem: bytes, proxy: ProxyChain, *, lifetime: dt.timedelta | None = None) -> bytes:
    """The PEM chain to PUT back: new proxy cert, then the user's proxy cert and its chain."""
    try:
        csr = x509.load_der_x509_csr(_fix_csr_version(csr_pem))
    except ValueError as exc:
        raise CredentialError(f"the CE sent a delegation request that cannot be read: {exc}") from None
    now = dt.datetime.now(dt.timezone.utc)
    not_after = proxy.cert.not_valid_after_utc
    if lifetime is not None:
        not_after = min(not_after, now + lifetime)
    serial = secrets.randbits(31) + 1
    subject = x509.Name(
        [
            *proxy.cert.subject.rdns,
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, str(serial))]),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(proxy.cert.subject)
        .public_key(csr.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.UnrecognizedExtension(PROXY_CERT_INFO, INHERIT_ALL), critical=True)
    )
    cert = builder.sign(proxy.key, hashes.SHA256())
    chain = [cert, proxy.cert, *proxy.chain]
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
