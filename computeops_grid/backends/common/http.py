"""HTTP failures in the delivery model, for every backend that speaks HTTP (ARC REST, the
Docker Engine API, the Kubernetes API).

* the connection was never made (refused, no route, DNS, connect timeout): *not sent*;
* the connection was made and then no reply came (read timeout, dropped): *may have arrived*;
* a reply came: 503 and 429 are *not sent* (refused before doing anything), other 5xx
  *may have arrived* (it failed somewhere while carrying the request out), 4xx *rejected*.
"""

from __future__ import annotations

from computeops_grid.errors import (
    BackendError,
    BackendRejected,
    BackendUnavailable,
    DeliveryUncertain,
)

# how urllib3/requests/http.client name a connection that never got through
_NEVER_CONNECTED = (
    "NewConnectionError",
    "ConnectTimeout",
    "ConnectTimeoutError",
    "ConnectionRefusedError",
    "Connection refused",
    "NameResolutionError",
    "No route to host",
    "FileNotFoundError",  # a unix socket that is not there
)
_TELLING = ("Connection refused", "timed out", "RemoteDisconnected", "Connection aborted", "reset by peer")
SYNC_HINT = "nothing is sent again blindly: `cops-grid sync` asks the backend what happened"


def never_connected(exc: BaseException) -> bool:
    """True when the request certainly did not leave this machine."""
    seen: BaseException | None = exc
    text = ""
    for _ in range(6):  # the cause chain of requests -> urllib3 -> socket
        if seen is None:
            break
        text += f"{type(seen).__name__} {seen!r} "
        seen = seen.__cause__ or seen.__context__
    return any(m in text for m in _NEVER_CONNECTED)


def transport_failure(
    exc: BaseException, what: str, *, backend: str, hint: str | None = None
) -> BackendError:
    """A request that got no HTTP reply."""
    if never_connected(exc):
        return BackendUnavailable(f"cannot reach {what}: {_short(exc)}", backend=backend, hint=hint)
    return DeliveryUncertain(
        f"{what} dropped the connection or did not answer, after the request was sent ({_short(exc)})",
        backend=backend,
        hint=SYNC_HINT,
    )


def status_failure(status: int, message: str, *, backend: str, hint: str | None = None) -> BackendError:
    """A request answered with an HTTP error ``status`` (``message`` says what and names it)."""
    if status in (429, 503):
        return BackendUnavailable(message, backend=backend, hint=hint or "the service is busy; retry later")
    if status >= 500:
        return DeliveryUncertain(message, backend=backend, hint=SYNC_HINT)
    return BackendRejected(message, backend=backend, hint=hint)


def _short(exc: BaseException) -> str:
    """The telling part of a urllib3/requests message (they nest the whole chain)."""
    text = str(exc)
    for marker in (
        "Connection refused",
        "timed out",
        "RemoteDisconnected",
        "Connection aborted",
        "reset by peer",
    ):
        if marker in text:
            return marker
    return text[:160]
