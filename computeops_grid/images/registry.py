"""A client of the registry HTTP API (OCI distribution spec, Docker Registry API v2).

What the publisher needs and no more: the tag list (following ``Link: <...>; rel="next"``
pages), a manifest's digest by ``HEAD`` (an unchanged image costs one request), manifests and
blobs by ``GET``, blobs streamed into the unpacker. One :class:`RegistryClient` per registry
(scheme + host), with a pool of keep-alive connections shared by the unpack threads.

Authentication follows the registry's ``WWW-Authenticate`` challenge: ``Basic`` with the
auth.json credentials (:mod:`~computeops_grid.images.credentials`), or ``Bearer`` with a
token fetched from the realm it names (anonymously when auth.json has nothing). Credentials
go only to the registry's own host and its token realm (redirects elsewhere, e.g. blob
storage, drop the ``Authorization`` header) and never into logs or messages.

Failures are typed (:mod:`~computeops_grid.images.errors`): unreachable, TLS, authentication,
not found, rate limited. Connection failures, 429 and 5xx are retried with exponential
backoff (``Retry-After`` honoured up to the cap); a registry that stays unreachable or rate
limited is given up for the rest of the run, so the next images fail at once, not after the
same wait.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urljoin

import requests
import urllib3
from requests.adapters import HTTPAdapter

from computeops_grid.images import credentials
from computeops_grid.images.errors import (
    RegistryAuthRefused,
    RegistryError,
    RegistryNotFound,
    RegistryRateLimited,
    RegistryUnreachable,
)
from computeops_grid.images.registry_errors import auth_hint, connection_error, status_error, tls_error

log = logging.getLogger(__name__)

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
ACCEPT = ", ".join(MANIFEST_TYPES)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
API_HOSTS = {"registry.hub.docker.com": "registry-1.docker.io", "docker.io": "registry-1.docker.io"}
MAX_MANIFEST = 4 << 20
MAX_PAGES = 10_000


@dataclass(frozen=True)
class Backoff:
    """Retries of connection failures, 429 and 5xx: ``first``, then doubling, up to ``cap``."""

    attempts: int = 4
    first: float = 1.0
    cap: float = 30.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after), self.cap)
        return min(self.first * 2.0 ** (attempt - 1), self.cap)


@dataclass(frozen=True)
class RegistryOptions:
    certs_dirs: tuple[Path, ...] = field(default_factory=credentials.default_certs_dirs)
    backoff: Backoff = Backoff()
    timeout: float = 60.0
    page_size: int = 100  # tags per page of the tag list


class _TlsAdapter(HTTPAdapter):
    """An adapter whose connections verify with ``context`` (system CAs + the host's certs.d)."""

    def __init__(self, context: Any, **kwargs: Any) -> None:
        self._context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


class RegistryClient:
    """Requests to one registry, ``scheme://host``; thread-safe."""

    def __init__(self, scheme: str, host: str, options: RegistryOptions | None = None) -> None:
        self.scheme = scheme
        self.host = host
        self.options = options or RegistryOptions()
        self.base = f"{scheme}://{API_HOSTS.get(host, host)}"
        self.session = requests.Session()
        context = credentials.tls_context(host, self.options.certs_dirs) if scheme == "https" else None
        adapter = _TlsAdapter(context, pool_maxsize=8) if context else HTTPAdapter(pool_maxsize=8)
        self.session.mount(self.base + "/", adapter)
        self._lock = threading.Lock()
        self._basic: str | None = None
        self._tokens: dict[str, str] = {}  # repository -> "Bearer ..."
        self._down: RegistryError | None = None

    def close(self) -> None:
        self.session.close()

    # -- the API ---------------------------------------------------------------------------

    def tags(self, repository: str) -> list[str]:
        """Every tag of ``repository``, following the pages of the tag list."""
        url = f"{self.base}/v2/{repository}/tags/list?n={self.options.page_size}"
        what = f"the tag list of {self.host}/{repository}"
        tags: list[str] = []
        seen: set[str] = set()
        while url and url not in seen and len(seen) < MAX_PAGES:
            seen.add(url)
            with self._send("GET", url, repository, what) as resp:
                doc = _json(resp, what)
                next_url = resp.links.get("next", {}).get("url", "")
            tags += [t for t in (doc.get("tags") or []) if isinstance(t, str)]
            url = urljoin(url, next_url) if next_url else ""
        log.debug("%s: %d tags in %d pages", what, len(tags), len(seen))
        return tags

    def head_digest(self, repository: str, reference: str) -> str:
        """The digest the registry gives for ``repository:reference``, without downloading it."""
        url = f"{self.base}/v2/{repository}/manifests/{reference}"
        what = f"the manifest of {self.host}/{repository}:{reference}"
        try:
            with self._send("HEAD", url, repository, what, accept=ACCEPT) as resp:
                digest = resp.headers.get("Docker-Content-Digest", "")
        except RegistryError as exc:
            if type(exc) not in (RegistryError, RegistryNotFound):
                raise
            digest = ""  # a HEAD answer has no body: GET says what is wrong (no tag? no repository?)
        if digest.startswith("sha256:"):
            return digest
        try:
            return self.manifest(repository, reference)[2]
        except RegistryNotFound as exc:
            raise self._missing(repository, reference, exc) from None

    def _missing(self, repository: str, reference: str, error: RegistryNotFound) -> RegistryError:
        """Say whether the repository or only the tag is missing (and which tags there are)."""
        if reference.startswith("sha256:"):
            return error
        try:
            tags = sorted(self.tags(repository))
        except RegistryNotFound as exc:
            return exc
        except RegistryError:
            return error
        some = ", ".join(tags[:8]) + (f" and {len(tags) - 8} more" if len(tags) > 8 else "")
        return RegistryNotFound(
            f"{self.host}/{repository} has no tag {reference}",
            hint=f"its tags: {some}" if tags else "the repository has no tags",
        )

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        """(manifest bytes, media type, digest) of ``repository:reference``."""
        url = f"{self.base}/v2/{repository}/manifests/{reference}"
        what = f"the manifest of {self.host}/{repository}:{reference}"
        with self._send("GET", url, repository, what, accept=ACCEPT, stream=True) as resp:
            data = _read_all(resp, MAX_MANIFEST, what, self.host)
            media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
            claimed = resp.headers.get("Docker-Content-Digest", "")
        return data, media_type, claimed

    def blob(self, repository: str, digest: str, limit: int = 64 << 20) -> bytes:
        what = f"blob {digest[:19]} of {self.host}/{repository}"
        with self._send("GET", self._blob_url(repository, digest), repository, what, stream=True) as resp:
            return _read_all(resp, limit, what, self.host)

    @contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[IO[bytes]]:
        """The blob as a stream (read as it arrives; its digest is checked by the reader)."""
        what = f"blob {digest[:19]} of {self.host}/{repository}"
        with self._send("GET", self._blob_url(repository, digest), repository, what, stream=True) as resp:
            yield cast(IO[bytes], _Body(resp, what, self.host))

    def _blob_url(self, repository: str, digest: str) -> str:
        return f"{self.base}/v2/{repository}/blobs/{digest}"

    # -- requests, retries, authentication ----------------------------------------------------

    def _send(
        self, method: str, url: str, repository: str, what: str, *, accept: str = "", stream: bool = False
    ) -> requests.Response:
        """One request, retried and authenticated; an HTTP error status raises."""
        attempt, authorized = 0, False
        while True:
            if self._down is not None:
                raise type(self._down)(
                    f"{self._down.message} (given up earlier in this run)", hint=self._down.hint
                )
            headers = {"Accept": accept} if accept else {}
            auth = self._tokens.get(repository) or self._basic
            if auth:
                headers["Authorization"] = auth
            try:
                resp = self.session.request(
                    method, url, headers=headers, stream=stream, timeout=self.options.timeout
                )
            except requests.exceptions.SSLError as exc:
                raise tls_error(self.host, exc) from None
            except requests.RequestException as exc:  # refused, timed out, cut while reading, ...
                attempt += 1
                error = connection_error(self.host, what, exc)
                self._pause_or_give_up(attempt, error, None)
                continue
            if resp.status_code == 401 and not authorized:
                resp.close()
                self._authorize(resp, repository)
                authorized = True
                continue
            if resp.status_code in RETRY_STATUSES:
                attempt += 1
                error = status_error(self.host, repository, what, resp)
                resp.close()
                self._pause_or_give_up(attempt, error, resp.headers.get("Retry-After"))
                continue
            if resp.status_code >= 400:
                note = self._creds_note(repository) if resp.status_code in (401, 403) else ""
                error = status_error(self.host, repository, what, resp, creds=note)
                resp.close()
                raise error
            return resp

    def _pause_or_give_up(self, attempt: int, error: RegistryError, retry_after: str | None) -> None:
        backoff = self.options.backoff
        if attempt >= backoff.attempts:
            if isinstance(error, (RegistryUnreachable, RegistryRateLimited)):
                self._down = error
            raise error
        delay = backoff.delay(attempt, retry_after)
        log.info("%s; retry %d/%d in %.1fs", error.message, attempt, backoff.attempts - 1, delay)
        time.sleep(delay)

    def _creds_note(self, repository: str) -> str:
        creds = credentials.lookup(self.host, repository)
        return creds.describe() if creds is not None else ""

    def _authorize(self, resp: requests.Response, repository: str) -> None:
        scheme, params = _challenge(resp.headers.get("WWW-Authenticate", ""))
        creds = credentials.lookup(self.host, repository)
        if scheme == "basic":
            if creds is None:
                raise RegistryAuthRefused(
                    f"{self.host} wants credentials for {repository} and auth.json has none",
                    hint=auth_hint(self.host),
                )
            pair = f"{creds.username}:{creds.password}".encode()
            self._basic = "Basic " + base64.b64encode(pair).decode()
            return
        if scheme != "bearer" or not params.get("realm"):
            raise RegistryAuthRefused(
                f"{self.host} asks for an authentication this client does not speak ({scheme or 'none'})",
                hint=auth_hint(self.host),
            )
        with self._lock:
            self._tokens[repository] = "Bearer " + self._token(params, repository, creds)

    def _token(self, params: dict[str, str], repository: str, creds: credentials.Credentials | None) -> str:
        query = {"scope": f"repository:{repository}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        who = creds.describe() if creds else "anonymously"
        try:
            resp = self.session.get(
                params["realm"],
                params=query,
                auth=(creds.username, creds.password) if creds else None,
                timeout=self.options.timeout,
            )
        except requests.RequestException as exc:
            raise connection_error(params["realm"], "the token service", exc) from None
        with resp:
            if resp.status_code != 200:
                raise RegistryAuthRefused(
                    f"the token service of {self.host} refused a token for {repository} "
                    f"({who}): HTTP {resp.status_code}",
                    hint=auth_hint(self.host),
                )
            doc = _json(resp, "the token service's answer")
        token = doc.get("token") or doc.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryAuthRefused(f"the token service of {self.host} answered without a token")
        return token


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="x",service="y"`` -> ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    for part in _split_params(rest):
        key, _, value = part.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return scheme.lower(), params


def _split_params(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p for p in [*parts, current] if p.strip()]


def _json(resp: requests.Response, what: str) -> dict[str, Any]:
    try:
        doc = resp.json()
    except ValueError:
        raise RegistryError(f"{what}: the registry's answer is not JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{what}: the registry's answer is not a JSON object")
    return doc


def _read_all(resp: requests.Response, limit: int, what: str, host: str) -> bytes:
    data = _Body(resp, what, host).read(limit + 1)
    if len(data) > limit:
        raise RegistryError(f"{what}: larger than {limit} bytes, refusing it as metadata")
    return data


class _Body:
    """``read`` of a streamed response; a cut connection is :class:`RegistryUnreachable`."""

    def __init__(self, resp: requests.Response, what: str, host: str) -> None:
        self.raw = resp.raw
        self.what = what
        self.host = host

    def read(self, size: int = -1) -> bytes:
        try:
            if size < 0:
                return bytes(self.raw.read())
            chunks, left = [], size
            while left > 0:  # urllib3 may return less than asked before the end
                chunk = self.raw.read(min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RegistryUnreachable(
                f"the connection to {self.host} broke while reading {self.what} ({type(exc).__name__})",
                hint="the registry went away or the network dropped; the next sync fetches it again",
            ) from None
