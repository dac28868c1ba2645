"""Preflight: refuse a job before anything is stored or sent when its credential will not do.

Checks, in order, each failure one :class:`CredentialError` whose hint is the command
that fixes it: the proxy exists; it belongs to this user and nobody else can read it;
it is not expired; it carries the VO the backend is configured for (with a valid AC).
A proxy that will expire before the job's wall time (plus a margin) is only a warning:
the job may still finish early, and the user may renew the proxy in time.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from computeops_grid.credentials.proxy import ProxyInfo, Tool, init_hint, proxy_info
from computeops_grid.errors import CredentialError

log = logging.getLogger(__name__)

MARGIN = 600  # seconds a proxy must outlive the job's wall time by


def hm(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}"


def check_file(path: Path, *, vo: str | None = None) -> None:
    """The proxy file exists, is ours, and only we can read it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CredentialError(f"no proxy at {path}", hint=f"create one with {init_hint(vo, path)}") from None
    except OSError as exc:
        raise CredentialError(f"cannot read the proxy {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CredentialError(f"the proxy {path} is not a regular file", hint=f"run {init_hint(vo, path)}")
    if st.st_uid != os.getuid():
        raise CredentialError(
            f"the proxy {path} belongs to uid {st.st_uid}, not to you (uid {os.getuid()})",
            hint=f"make your own with {init_hint(vo, path)}",
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise CredentialError(
            f"the proxy {path} can be read by others (mode {mode:04o}); it must be readable only by you",
            hint=f"`chmod 600 {path}`, or make a new one with {init_hint(vo, path)}",
        )


def check_proxy(
    path: Path,
    *,
    vo: str | None = None,
    walltime: float | None = None,
    margin: float = MARGIN,
    tool: Tool | None = None,
) -> list[str]:
    """Raise CredentialError when the proxy must not be used; return warnings otherwise."""
    left = usable_seconds(path, vo=vo, tool=tool)
    warnings = []
    if walltime and left < walltime + margin:
        warnings.append(
            f"the proxy {path} expires in {hm(left)} h but the job may run {hm(walltime)} h "
            f"(+{hm(margin)} margin): renew it with {init_hint(vo, path)}"
        )
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def usable_seconds(path: Path, *, vo: str | None = None, tool: Tool | None = None) -> int:
    """Seconds the proxy at ``path`` stays usable for ``vo``; CredentialError when it is not."""
    check_file(path, vo=vo)
    info = proxy_info(path, tool=tool)
    if info.expired:
        raise CredentialError(f"the proxy {path} has expired", hint=f"renew it with {init_hint(vo, path)}")
    return _usable_for(info, path, vo)


def _usable_for(info: ProxyInfo, path: Path, vo: str | None) -> int:
    """Seconds the proxy stays usable for ``vo`` (proxy and AC); errors when the VO is absent."""
    if not vo:
        return info.time_left
    ac = info.ac_for(vo)
    if ac is None:
        carried = ", ".join(info.vos) or "no VO at all (a plain proxy)"
        raise CredentialError(
            f"the proxy {path} carries {carried}, but this backend needs VO {vo}",
            hint=f"make a proxy of VO {vo} with {init_hint(vo, path)}",
        )
    if ac.time_left <= 0:
        raise CredentialError(
            f"the VOMS attributes of VO {vo} in the proxy {path} have expired",
            hint=f"renew them with {init_hint(vo, path)}",
        )
    return min(info.time_left, ac.time_left)


def health_problems(
    path: Path, *, vo: str | None = None, soon: float = 3600, tool: Tool | None = None
) -> tuple[str, list[str]]:
    """For ``cops-grid backends``: (error, warnings); error is '' when the proxy is usable."""
    try:
        left = usable_seconds(path, vo=vo, tool=tool)
    except CredentialError as exc:
        return f"{exc.message}; {exc.hint}" if exc.hint else exc.message, []
    if left < soon:
        return "", [f"the proxy {path} expires in {hm(left)} h: renew it with {init_hint(vo, path)}"]
    return "", []
