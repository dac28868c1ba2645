"""WLCG bearer tokens: discovery in the order of the WLCG Bearer Token Discovery spec.

Order (first hit wins): ``$BEARER_TOKEN`` (the token itself), ``$BEARER_TOKEN_FILE``,
``$XDG_RUNTIME_DIR/bt_u$UID``, ``/tmp/bt_u$UID``. The claims of a JWT are decoded
without checking the signature: the client only needs expiry, issuer and scopes to
warn early; the server does the real validation. The token text is never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from computeops_grid.errors import CredentialError

log = logging.getLogger(__name__)

FIX_HINT = "get a fresh token (e.g. `oidc-token <account> > $XDG_RUNTIME_DIR/bt_u$(id -u)`)"


@dataclass(frozen=True)
class Token:
    """A bearer token and its decoded (unverified) claims.

    ``path`` is the file it came from, or ``None`` when it came from ``$BEARER_TOKEN``.
    """

    raw: str = field(repr=False)
    claims: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None
    source: str = ""

    @property
    def exp(self) -> float | None:
        value = self.claims.get("exp")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def iss(self) -> str:
        return str(self.claims.get("iss", ""))

    @property
    def sub(self) -> str:
        return str(self.claims.get("sub", ""))

    @property
    def scope(self) -> tuple[str, ...]:
        value = self.claims.get("scope", "")
        if isinstance(value, list):
            return tuple(str(v) for v in value)
        return tuple(str(value).split())

    @property
    def groups(self) -> tuple[str, ...]:
        value = self.claims.get("wlcg.groups", ())
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    @property
    def audience(self) -> tuple[str, ...]:
        value = self.claims.get("aud", ())
        if isinstance(value, str):
            return (value,)
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    def time_left(self, now: float | None = None) -> float:
        """Seconds until expiry (negative once expired; ``inf`` without an ``exp`` claim)."""
        if self.exp is None:
            return float("inf")
        return self.exp - (time.time() if now is None else now)

    @property
    def expired(self) -> bool:
        return self.time_left() <= 0


def decode_claims(raw: str) -> dict[str, Any]:
    """The payload of a JWT as a dict; raises :class:`CredentialError` when it is not a JWT."""
    parts = raw.strip().split(".")
    if len(parts) != 3:
        raise CredentialError(
            "the bearer token is not a JWT (expected three dot-separated parts)", hint=FIX_HINT
        )
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise CredentialError(f"the bearer token's claims cannot be decoded: {exc}", hint=FIX_HINT) from None
    if not isinstance(claims, dict):
        raise CredentialError("the bearer token's claims are not a JSON object", hint=FIX_HINT)
    return claims


def parse_token(raw: str, *, path: Path | None = None, source: str = "") -> Token:
    """A :class:`Token` from its text (whitespace around it is ignored, as the spec says)."""
    text = raw.strip()
    return Token(raw=text, claims=decode_claims(text), path=path, source=source)


def read_token_file(path: Path, *, source: str = "") -> Token:
    """Read and decode a token file; a missing or unreadable file is a :class:`CredentialError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CredentialError(f"cannot read bearer token file {path}: {reason}", hint=FIX_HINT) from None
    if not text.strip():
        raise CredentialError(f"bearer token file {path} is empty", hint=FIX_HINT)
    return parse_token(text, path=path, source=source or str(path))


def discovery_paths(env: Mapping[str, str] | None = None, uid: int | None = None) -> list[tuple[str, Path]]:
    """The token files the spec looks at, in order, as ``(source, path)``."""
    env = os.environ if env is None else env
    uid = os.getuid() if uid is None else uid
    found: list[tuple[str, Path]] = []
    if env.get("BEARER_TOKEN_FILE"):
        found.append(("BEARER_TOKEN_FILE", Path(env["BEARER_TOKEN_FILE"])))
    if env.get("XDG_RUNTIME_DIR"):
        found.append(("XDG_RUNTIME_DIR", Path(env["XDG_RUNTIME_DIR"]) / f"bt_u{uid}"))
    found.append(("/tmp", Path("/tmp") / f"bt_u{uid}"))  # noqa: S108 - the spec's fixed location
    return found


def discover_token(env: Mapping[str, str] | None = None, uid: int | None = None) -> Token | None:
    """The first token found in the spec's order, or ``None`` when there is none.

    A location that is set but unusable (``$BEARER_TOKEN_FILE`` names a missing file,
    a token that is not a JWT) raises :class:`CredentialError` instead of silently
    falling through to a different token than the user meant.
    """
    env = os.environ if env is None else env
    if env.get("BEARER_TOKEN", "").strip():
        log.debug("bearer token from $BEARER_TOKEN")
        return parse_token(env["BEARER_TOKEN"], source="BEARER_TOKEN")
    for source, path in discovery_paths(env, uid):
        if source == "BEARER_TOKEN_FILE" or path.exists():
            log.debug("bearer token from %s (%s)", path, source)
            return read_token_file(path, source=source)
    return None
