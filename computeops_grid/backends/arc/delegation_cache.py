"""Delegations kept across submissions: one per CE and proxy, while the CE still holds it.

Creating a delegation makes A-REX generate a key pair (1.7 to 7 s of a 100-job submission
on the test machine under load). The delegation id is remembered per CE and per proxy
(the SHA-256 of the proxy certificate: a renewed proxy gets a new delegation, so a job
never runs with the credential of a proxy the user has replaced) in
``<home>/arc/delegations.json`` (0600; ids only, no secret). Before reuse the CE is asked
for the delegated certificate (``POST delegations/<id>?action=get``): a delegation it
no longer has, or one that expires within :data:`MIN_LEFT`, is replaced by a new one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
from pathlib import Path

from cryptography import x509

log = logging.getLogger(__name__)
MIN_LEFT = dt.timedelta(hours=1)


def proxy_key(ce: str, proxy: Path) -> str | None:
    """``<ce> <sha256 of the proxy certificate>``; ``None`` when the proxy cannot be read."""
    try:
        cert = x509.load_pem_x509_certificates(proxy.read_bytes())[0]
    except (OSError, ValueError, IndexError):
        return None
    return f"{ce} {hashlib.sha256(cert.tbs_certificate_bytes).hexdigest()}"


def usable(pem: bytes, now: dt.datetime | None = None) -> bool:
    """The delegated certificate the CE holds has at least :data:`MIN_LEFT` left."""
    try:
        cert = x509.load_pem_x509_certificates(pem)[0]
    except (ValueError, IndexError):
        return False
    now = now or dt.datetime.now(dt.timezone.utc)
    after = getattr(cert, "not_valid_after_utc", None)  # cryptography >= 42
    if after is None:
        after = cert.not_valid_after.replace(tzinfo=dt.timezone.utc)
    return bool(after - now >= MIN_LEFT)


class DelegationCache:
    """``{ce + proxy: delegation id}`` in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, str]:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self.path.read_text())
            if isinstance(data, dict):
                return {str(k): str(v) for k, v in data.items()}
        return {}

    def get(self, key: str) -> str | None:
        return self._read().get(key)

    def put(self, key: str, delegation: str) -> None:
        ce = key.rpartition(" ")[0]
        data = {k: v for k, v in self._read().items() if k.rpartition(" ")[0] != ce}
        data[key] = delegation  # one per CE: the one of the current proxy
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(data, out)
            tmp.replace(self.path)
        except OSError as exc:  # a cache that cannot be written costs a delegation next time
            log.info("cannot keep the delegation id in %s: %s", self.path, exc)
