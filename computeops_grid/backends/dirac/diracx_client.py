"""A small synchronous facade over the official ``diracx-client`` for cops-grid.

It adds what the backend needs around the generated client: credential checks before
any call, typed cops-grid errors instead of azure exceptions, content-addressed sandbox
upload (an archive already on the server is not sent again; a process-wide cache skips
even the request), search with pagination, and safe sandbox download.

Server facts (DiracX 0.7.0) it works with: at most ``MAX_PER_CALL`` JDLs per submit
call; search pages answer 206 and 416 past the end; there is no kill route (a kill is a
status change); a pilot token cannot create sandboxes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests

from computeops_grid.backends.common.sandbox import Archive, extract_archive
from computeops_grid.credentials.token import decode_claims
from computeops_grid.errors import (
    BackendError,
    BackendRejected,
    BackendUnavailable,
    CopsError,
    CredentialError,
    DeliveryUncertain,
)

log = logging.getLogger(__name__)

BACKEND = "diracx"
MAX_PER_CALL = 20  # diracx 0.7.0 MAX_PARAMETRIC_JOBS: more JDLs per call are refused with 400
LOGIN_HINT = "log in with `dirac login --vo <vo>` or point DIRACX_CREDENTIALS_PATH at a token file"
_uploaded: dict[tuple[str, str], str] = {}  # (server url, checksum) -> PFN, for this process


def default_credentials_path() -> Path:
    env = os.environ.get("DIRACX_CREDENTIALS_PATH")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "diracx" / "credentials.json"


@dataclass(frozen=True)
class Credentials:
    path: Path
    expires: float  # the access token's exp
    refreshable_until: float  # the refresh token's exp (0 when there is none)
    vo: str
    group: str
    user: str


def check_credentials(path: Path, *, now: float | None = None) -> Credentials:
    """Read a DiracX credentials file and refuse it when it cannot authenticate any more."""
    now = time.time() if now is None else now
    if not path.is_file():
        raise CredentialError(f"no DiracX credentials at {path}", hint=LOGIN_HINT)
    if path.stat().st_mode & 0o077:
        raise CredentialError(f"DiracX credentials {path} are readable by others", hint=f"chmod 600 {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        access = decode_claims(str(data["access_token"]))
    except (ValueError, KeyError, TypeError, CopsError):
        raise CredentialError(f"{path} is not a DiracX credentials file", hint=LOGIN_HINT) from None
    refresh = data.get("refresh_token")
    refresh_exp = 0.0
    if refresh:
        try:
            refresh_exp = float(decode_claims(str(refresh)).get("exp", now + 3600))
        except CopsError:  # opaque refresh token: let the server judge
            refresh_exp = now + 3600
    creds = Credentials(
        path=path,
        expires=float(access.get("exp", 0)),
        refreshable_until=refresh_exp,
        vo=str(access.get("vo", "")),
        group=str(access.get("dirac_group", "")),
        user=str(access.get("preferred_username", "")),
    )
    if creds.expires <= now and creds.refreshable_until <= now:
        raise CredentialError(
            f"the DiracX token in {path} expired {int(now - creds.expires)} s ago and cannot be refreshed",
            hint=LOGIN_HINT,
        )
    return creds


def _http_error(exc: Exception, what: str) -> CopsError:  # noqa: PLR0911 - one return per delivery
    """The delivery of a failed call: not sent (never connected, 503), rejected (4xx), or may
    have arrived (reply lost, 5xx, anything else)."""
    from azure.core.exceptions import (  # noqa: PLC0415 - see module doc
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, ServiceRequestError):
        return BackendUnavailable(f"cannot reach the DiracX server ({what}): {exc}", backend=BACKEND)
    if isinstance(exc, ServiceResponseError):
        return DeliveryUncertain(
            f"no reply from the DiracX server ({what}): {exc}",
            backend=BACKEND,
            hint="nothing is sent again blindly: `cops-grid sync` looks the jobs up",
        )
    if isinstance(exc, ClientAuthenticationError) or getattr(exc, "status_code", None) == 401:
        return CredentialError(f"the DiracX server refused the token ({what})", hint=LOGIN_HINT)
    if isinstance(exc, HttpResponseError):
        detail = ""
        if exc.response is not None:
            try:
                detail = str(json.loads(exc.response.text()).get("detail", ""))
            except (ValueError, AttributeError):
                detail = exc.response.text()[:300]
        status = exc.status_code or 0
        message = f"{what}: the server answered {status}: {detail or exc.message}"
        if status == 503:
            return BackendUnavailable(message, backend=BACKEND)
        if status >= 500:
            return DeliveryUncertain(message, backend=BACKEND)
        return BackendRejected(message, backend=BACKEND)
    return DeliveryUncertain(f"{what} failed: {exc}", backend=BACKEND)


class DiracXClient:
    """One authenticated connection to a DiracX server (opened lazily, reused)."""

    def __init__(self, url: str, credentials_path: Path) -> None:
        self.url = url.rstrip("/")
        self.credentials_path = credentials_path
        self._client: Any = None

    def __enter__(self) -> DiracXClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def api(self) -> Any:
        if self._client is None:
            from diracx.client.sync import SyncDiracClient  # noqa: PLC0415 - ~1 s import, see module doc
            from diracx.core.preferences import DiracxPreferences  # noqa: PLC0415

            prefs = DiracxPreferences(url=self.url, credentials_path=self.credentials_path)
            try:
                self._client = SyncDiracClient(diracx_preferences=prefs)
            except Exception as exc:  # it only GETs the OpenID configuration: no job can have arrived
                raise BackendUnavailable(
                    f"cannot reach the DiracX server at {self.url}: {exc}",
                    backend=BACKEND,
                    hint="is the server up and backends.diracx.url right? the jobs stay retryable",
                ) from exc
        return self._client

    @contextmanager
    def calling(self, what: str) -> Iterator[None]:
        """Turn the client's exceptions into cops-grid errors."""
        try:
            yield
        except CopsError:
            raise
        except Exception as exc:
            raise _http_error(exc, what) from exc

    def submit(self, jdls: Sequence[str]) -> list[int]:
        """Submit at most ``MAX_PER_CALL`` JDLs (or one parametric JDL) in one call."""
        with self.calling("job submission"):
            # azure-core's RetryPolicy repeats a POST answered 500/503/504 (a gateway's timeout
            # after the server inserted the jobs): a second set of jobs. Never repeated here.
            inserted = self.api.jobs.submit_jdl_jobs(list(jdls), retry_total=0)
        return [int(job.job_id) for job in inserted]

    def search(
        self, conditions: list[dict[str, Any]], parameters: Sequence[str], per_page: int = 500
    ) -> list[dict[str, Any]]:
        """All matching jobs, page by page (the server answers 416 past the last page)."""
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415 - see module doc

        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            try:
                with self.calling("job search"):
                    batch = self.api.jobs.search(
                        parameters=list(parameters),
                        search=conditions,
                        sort=[{"parameter": "JobID", "direction": "asc"}],
                        page=page,
                        per_page=per_page,
                    )
            except BackendError as exc:
                if isinstance(exc.__cause__, HttpResponseError) and exc.__cause__.status_code == 416:
                    break
                raise
            rows.extend(batch)
            if len(batch) < per_page:
                break
            page += 1
        return rows

    def set_status(self, updates: Mapping[int, Sequence[Mapping[str, str]]]) -> dict[str, Any]:
        """Record status changes, each job's in order (one timestamp each, 1 µs apart).

        There is no kill route: a kill is ``Status: Killed``. The server applies DIRAC's
        state machine and silently ignores an invalid transition, so callers re-read.
        """
        now = datetime.now(timezone.utc)
        body = {
            str(jid): {
                (now + timedelta(microseconds=i)).isoformat(): {"Source": "cops-grid", **fields}
                for i, fields in enumerate(steps)
            }
            for jid, steps in updates.items()
        }
        with self.calling("status update"):
            result: dict[str, Any] = self.api.jobs.set_job_statuses(body)
        return result

    def heartbeat(self, job_id: int, wall_seconds: float) -> list[str]:
        """Report the job alive; returns the commands the server has for it (``Kill`` once its
        owner killed it: the server sends each command once)."""
        with self.calling("heartbeat"):
            commands = self.api.jobs.add_heartbeat({str(job_id): {"WallClockTime": wall_seconds}})
        return [str(c.command) for c in commands or [] if int(c.job_id) == job_id]

    def stored_jdl(self, job_id: int) -> str:
        """The JDL the server stored for a waiting job.

        DiracX 0.7.0 shows a stored JDL only in the answer of ``reschedule``; with
        ``reset_jobs`` the job goes back to ``Received`` and its counter is not raised.
        """
        with self.calling("reading the job description"):
            res = self.api.jobs.reschedule_jobs({"job_ids": [job_id]}, reset_jobs=True)
        entry = res.get("success", {}).get(str(job_id), {})
        jdl = entry.get("JDL") or entry.get("InputData")  # 0.7.0 returns it under InputData
        if not isinstance(jdl, str) or "Executable" not in jdl:
            raise BackendError(f"the server returned no JDL for job {job_id}", backend=BACKEND)
        return jdl

    def upload(self, archive: Archive) -> str:
        """Upload a sandbox (unless the server already has it) and return its PFN."""
        from diracx.client.models import SandboxInfo  # noqa: PLC0415 - see module doc

        key = (self.url, archive.checksum)
        if key in _uploaded:
            return _uploaded[key]
        info = SandboxInfo(
            checksum_algorithm="sha256", checksum=archive.checksum, size=archive.size, format="tar.zst"
        )
        with self.calling("sandbox upload"):
            res = self.api.jobs.initiate_sandbox_upload(info)
        if res.url:
            log.debug("uploading sandbox %s (%d bytes)", archive.checksum, archive.size)
            try:
                resp = requests.post(
                    res.url, data=res.fields, files={"file": ("file", archive.data)}, timeout=300
                )
                resp.raise_for_status()
            except requests.RequestException as exc:
                raise BackendUnavailable(f"sandbox upload to storage failed: {exc}", backend=BACKEND) from exc
        else:
            log.debug("sandbox %s already on the server", archive.checksum)
        _uploaded[key] = str(res.pfn)
        return str(res.pfn)

    def download(self, pfn: str, dest: Path) -> list[Path]:
        """Download a sandbox and extract it safely into ``dest``."""
        with self.calling("sandbox download"):
            res = self.api.jobs.get_sandbox_file(pfn=pfn)
        try:
            resp = requests.get(res.url, timeout=300)
            resp.raise_for_status()
        except requests.RequestException as exc:
            raise BackendUnavailable(f"sandbox download failed: {exc}", backend=BACKEND) from exc
        return extract_archive(resp.content, dest)

    def job_sandboxes(self, job_id: int, kind: str = "Output") -> list[str]:
        with self.calling("listing the job's sandboxes"):
            found = self.api.jobs.get_job_sandboxes(job_id)
        return [str(p) for p in found.get(kind, [])]

    def assign_output(self, job_id: int, pfn: str) -> None:
        with self.calling("assigning the output sandbox"):
            self.api.jobs.assign_sandbox_to_job(job_id, json.dumps(pfn))
