"""What a failed registry request means, in words, with a hint each: one place that classifies."""

from __future__ import annotations

import re

import requests

from computeops_grid.images.errors import (
    RegistryAuthRefused,
    RegistryError,
    RegistryNotFound,
    RegistryRateLimited,
    RegistryTlsError,
    RegistryUnreachable,
)

AUTH_FILES = "$REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json or ~/.config/containers/auth.json"
_CAUSES = (
    ("Connection refused", "connection refused"),
    ("NameResolutionError", "name not resolved"),
    ("Name or service not known", "name not resolved"),
    ("Temporary failure in name resolution", "name not resolved"),
    ("No route to host", "no route to host"),
    ("timed out", "timed out"),
    ("Timeout", "timed out"),
    ("RemoteDisconnected", "connection closed without an answer"),
    ("reset by peer", "connection reset"),
    ("Connection aborted", "connection aborted"),
)


def auth_hint(host: str) -> str:
    return (
        f"log in with 'skopeo login {host}' (or podman login), which writes auth.json "
        f"({AUTH_FILES}); check the user may pull this repository"
    )


def _cause(exc: BaseException) -> str:
    text = f"{type(exc).__name__} {exc}"
    for marker, words in _CAUSES:
        if marker in text:
            return words
    return type(exc).__name__


def connection_error(host: str, what: str, exc: BaseException) -> RegistryError:
    return RegistryUnreachable(
        f"cannot reach {host} for {what}: {_cause(exc)}",
        hint=(
            f"check that the registry is up and that {host} is its name and port "
            "(behind a proxy: HTTPS_PROXY/NO_PROXY); the next sync tries again"
        ),
    )


def tls_error(host: str, exc: BaseException) -> RegistryError:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        found = re.search(r"certificate verify failed: ([^(\])]+)", text)
        reason = found.group(1).strip() if found else "verify failed"
        return RegistryTlsError(
            f"the TLS certificate of {host} is not trusted ({reason})",
            hint=(
                f"put the CA that signed it in /etc/containers/certs.d/{host}/ca.crt "
                f"(or DIR/{host}/ca.crt with --certs-dir DIR); never turn verification off"
            ),
        )
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text or "packet length too long" in text:
        return RegistryTlsError(
            f"{host} answers in plain HTTP, not HTTPS",
            hint=f"if this registry really has no TLS, write the wishlist entry as http://{host}/...",
        )
    return RegistryTlsError(
        f"the TLS handshake with {host} failed ({text[-160:]})",
        hint=f"check the registry's certificate and /etc/containers/certs.d/{host}/",
    )


def _error_code(resp: requests.Response) -> tuple[str, str]:
    """The first (code, message) of a registry's JSON error body, if it sent one."""
    try:
        doc = resp.json()
        first = (doc.get("errors") or [{}])[0]
        return str(first.get("code", "")), str(first.get("message", ""))
    except (ValueError, AttributeError, IndexError, TypeError, requests.RequestException):
        return "", ""


def status_error(
    host: str, repository: str, what: str, resp: requests.Response, *, creds: str = ""
) -> RegistryError:
    """The error for an HTTP error status ``resp`` (``creds`` says whose credentials were sent)."""
    status = resp.status_code
    code, detail = ("", "") if resp.request.method == "HEAD" else _error_code(resp)
    said = f": {detail}" if detail else ""
    if status == 429:
        return RegistryRateLimited(
            f"{host} limits the rate of requests (HTTP 429) for {what}",
            hint="retried with backoff; log in to get a higher limit (Docker Hub), or sync later",
        )
    if status >= 500:
        return RegistryUnreachable(
            f"{host} failed to answer {what} (HTTP {status}{said})",
            hint="a server-side failure; the next sync tries again",
        )
    if status in (401, 403):
        who = f"the credentials of {creds}" if creds else "anonymous access (auth.json has no entry)"
        return RegistryAuthRefused(
            f"{host} refused {who} for {what} (HTTP {status}{said})", hint=auth_hint(host)
        )
    if status == 404:
        return _not_found(host, repository, what, code)
    if status == 400 and "HTTPS" in resp.text[:200]:
        return RegistryTlsError(
            f"{host} speaks HTTPS, but the entry says http://",
            hint=f"write the wishlist entry as https://{host}/...",
        )
    return RegistryError(f"{host} refused {what} (HTTP {status}{said})")


def _not_found(host: str, repository: str, what: str, code: str) -> RegistryError:
    if code == "NAME_UNKNOWN":
        return RegistryNotFound(
            f"{host} has no repository {repository}",
            hint="check the repository name (a private repository may look absent without credentials)",
        )
    if code == "BLOB_UNKNOWN":
        return RegistryNotFound(
            f"{host}/{repository} lacks {what}, which its manifest names",
            hint="the registry is inconsistent; push the image again",
        )
    return RegistryNotFound(
        f"{what} not found on {host}",
        hint=f"check the tag: skopeo list-tags docker://{host}/{repository}",
    )
