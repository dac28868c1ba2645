"""The ARC CE REST interface (``/arex/rest/1.0`` on A-REX 6, ``1.1`` on ARC 7) over ``requests``.

The user's proxy is the TLS client certificate; the CE's CA directory verifies the server.
Errors become one message naming the CE, with their delivery: a connection that never got
through is *not sent* (:class:`BackendUnavailable`, safe to retry); a request that may have
reached the CE (timeout, connection dropped after sending, a 5xx other than 503) *may have
arrived* (:class:`DeliveryUncertain`), so a submit is never repeated blindly.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.exceptions import RequestException, SSLError

from computeops_grid.backends.arc.delegation import load_proxy, sign_csr
from computeops_grid.backends.arc.delegation_cache import DelegationCache, proxy_key, usable
from computeops_grid.backends.common.http import status_failure, transport_failure
from computeops_grid.errors import (
    BackendError,
    BackendRejected,
    BackendUnavailable,
    CopsError,
    CredentialError,
)

log = logging.getLogger(__name__)
VERSIONS = ("1.1", "1.0")
_ADL_NAME = re.compile(r"<(?:\w+:)?ActivityIdentification>.*?<(?:\w+:)?Name>([^<]*)</", re.DOTALL)
_XRSL_NAME = re.compile(r'\(\s*jobname\s*=\s*"([^"]*)"', re.IGNORECASE)


def rest_base(ce: str) -> str:
    """``arc://host``, ``host[:port]`` or ``https://host:port/arex`` -> ``https://host:port/arex``."""
    text = ce if "://" in ce else f"https://{ce}"
    parts = urlsplit(text)
    port = f":{parts.port}" if parts.port else ""
    path = parts.path.rstrip("/")
    if not path or parts.scheme == "arc":
        path = "/arex"
    return f"https://{parts.hostname}{port}{path}"


def _as_list(payload: Any, key: str = "job") -> list[dict[str, Any]]:
    """A-REX answers an object for one item and a list for several."""
    value = payload.get(key, []) if isinstance(payload, dict) else []
    return [value] if isinstance(value, dict) else [v for v in value if isinstance(v, dict)]


class ArcRest:
    """One CE, one proxy. ``delegation_id`` is created on first use and reused."""

    def __init__(
        self,
        ce: str,
        proxy: Path,
        ca_dir: str,
        *,
        timeout: float = 30.0,
        name: str = "arc",
        delegations: DelegationCache | None = None,
    ) -> None:
        self.base = rest_base(ce)
        self.proxy = proxy
        self.timeout = timeout
        self.name = name
        self.ca_dir = ca_dir
        self._local = threading.local()  # one session (connection pool) per thread: uploads run side by side
        self._version: str | None = None
        self._delegation: str | None = None
        self.delegations = delegations  # kept across submissions (see delegation_cache)

    # -- plumbing -------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        """This thread's HTTP session: the proxy as client certificate, the CE's CAs."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
            session.cert = str(self.proxy)
            session.verify = self.ca_dir
            session.headers["Accept"] = "application/json"
            self._local.session = session
        return session

    def _request(
        self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201), **kw: Any
    ) -> requests.Response:
        url = path if path.startswith("https://") else f"{self.api}/{path}"
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kw)
        except SSLError as exc:  # the handshake failed: nothing was sent
            raise BackendUnavailable(
                f"TLS with {self.base} failed: {exc}",
                backend=self.name,
                hint="check the CE's CA in X509_CERT_DIR and your proxy (`cops-grid proxy info`)",
            ) from None
        except RequestException as exc:
            hint = "the CE is down or the host/port is wrong; `cops-grid backends` checks it"
            raise transport_failure(exc, f"the CE {self.base}", backend=self.name, hint=hint) from None
        if response.status_code not in ok:
            raise self._http_error(response, method, path)
        return response

    def _http_error(self, response: requests.Response, method: str, path: str) -> CopsError:
        said = response.reason or response.text.strip()[:200]
        where = path.split("?", maxsplit=1)[0]
        what = f"the CE {self.base} answered {response.status_code} {said} to {method} {where}"
        if response.status_code in (401, 403):
            return CredentialError(
                what, hint="is your proxy's VO allowed on this CE? check with `cops-grid proxy info`"
            )
        return status_failure(response.status_code, what, backend=self.name)

    @property
    def api(self) -> str:
        if self._version is None:
            self._version = self.discover_version()
        return f"{self.base}/rest/{self._version}"

    def discover_version(self) -> str:
        """The newest REST version both sides speak (``GET /arex/rest``)."""
        payload = self._request("GET", f"{self.base}/rest").json()
        offered = payload.get("version", []) if isinstance(payload, dict) else []
        offered = [offered] if isinstance(offered, str) else offered
        for version in VERSIONS:
            if version in offered:
                return version
        raise BackendError(
            f"the CE {self.base} offers REST versions {offered}, none of {VERSIONS}", backend=self.name
        )

    # -- operations -----------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = self._request("GET", "info").json()
        return data

    def delegate(self) -> str:
        """The delegation of this proxy on the CE: the one a former submission made while the
        CE still holds it with an hour left, else a new one (its CSR signed with the proxy)."""
        if self._delegation is None:
            key = proxy_key(self.base, self.proxy) if self.delegations is not None else None
            self._delegation = self._reusable(key) or self._new_delegation(key)
        return self._delegation

    def _reusable(self, key: str | None) -> str | None:
        known = self.delegations.get(key) if self.delegations is not None and key else None
        if known is None:
            return None
        try:
            pem = self._request("POST", f"delegations/{known}?action=get").content
        except BackendRejected:  # 4xx: the CE no longer has it
            return None
        return known if usable(pem) else None

    def _new_delegation(self, key: str | None) -> str:
        response = self._request("POST", "delegations?action=new")
        # A-REX 6 answers Location: /arex/rest/1.0/delegations?action=new/<id>
        delegation = response.headers.get("Location", "").rstrip("/").rsplit("/", 1)[-1]
        chain = sign_csr(response.content, load_proxy(self.proxy))
        self._request(
            "PUT",
            f"delegations/{delegation}",
            data=chain,
            headers={"Content-Type": "application/x-pem-file"},
        )
        if self.delegations is not None and key:
            self.delegations.put(key, delegation)
        return delegation

    def submit(self, description: str) -> list[dict[str, Any]]:
        """Submit one or several ADL descriptions; one result per description, in order."""
        response = self._request(
            "POST", "jobs?action=new", data=description.encode(), headers={"Content-Type": "application/xml"}
        )
        return _as_list(response.json())

    def upload(self, job_id: str, name: str, data: bytes) -> None:
        self._request("PUT", f"jobs/{job_id}/session/{name}", data=data)

    def _action(self, action: str, ids: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        body = {"job": [{"id": i} for i in ids]}
        return _as_list(self._request("POST", f"jobs?action={action}", json=body).json())

    def status(self, ids: list[str]) -> dict[str, str]:
        return {j["id"]: str(j.get("state", "")) for j in self._action("status", ids) if "id" in j}

    def activities(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """GLUE2 ComputingActivity per job (Name, State, ExitCode, Error, ...)."""
        out: dict[str, dict[str, Any]] = {}
        for job in self._action("info", ids):
            activity = job.get("info_document", {}).get("ComputingActivity", {})
            if "id" in job and isinstance(activity, dict):
                out[job["id"]] = activity
        return out

    def description_name(self, job_id: str) -> str | None:
        """The job's name in the description the CE stored (ADL, or xRSL from old clients)."""
        try:
            text = self._request("GET", f"jobs/{job_id}/diagnose/description").text
        except BackendRejected:  # the CE keeps no description of it (4xx): it has no name to tell
            return None
        match = _ADL_NAME.search(text) or _XRSL_NAME.search(text)
        return match.group(1).strip() if match else None

    def kill(self, ids: list[str]) -> list[dict[str, Any]]:
        return self._action("kill", ids)

    def clean(self, ids: list[str]) -> list[dict[str, Any]]:
        return self._action("clean", ids)

    def list_jobs(self) -> list[str]:
        response = self._request("GET", "jobs")
        if not response.content.strip():  # A-REX 6 answers an empty body when the user has no jobs
            return []
        return [j["id"] for j in _as_list(response.json()) if "id" in j]

    def session_files(self, job_id: str) -> list[str]:
        payload = self._request("GET", f"jobs/{job_id}/session").json()
        files = payload.get("file", []) if isinstance(payload, dict) else []
        return [files] if isinstance(files, str) else [str(f) for f in files]

    def download(self, job_id: str, name: str) -> bytes:
        return self._request("GET", f"jobs/{job_id}/session/{name}").content
