"""Typed errors: a message for the user, a hint saying what to do, and an exit code.

Library code raises these; only the CLI (``cli/output.py``) turns them into output.

Two tables live here, each the only copy of its contract:

* :data:`EXIT_CODES`: one meaning per exit code of ``cops-grid``; the ``--help`` epilog is
  generated from it and every error class takes its code from it.
* :class:`Delivery`: what a failed backend request did. Every :class:`BackendError` says
  one of three things, and the retry policy, the submit logic and ``sync`` act on it alone:

  ============== ===================================== ==================================
  delivery       meaning                               what cops-grid does
  ============== ===================================== ==================================
  rejected       the backend refused the request       job ``failed``; never retried
  not sent       the request certainly did not arrive  retried; the job stays ``new``
  may arrive     it may have arrived (timeout, reply   never repeated blindly: the job
                 lost, connection dropped after        stays ``submitting`` and ``sync``
                 sending)                              finds it with ``lookup``
  ============== ===================================== ==================================
"""

from __future__ import annotations

import enum
from typing import ClassVar


class ExitCode(enum.IntEnum):
    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    INVALID_INPUT = 3
    UNKNOWN_JOB = 4
    IMAGE_NOT_FOUND = 5
    JOBS_FAILED = 8
    CANCEL_UNCONFIRMED = 9
    IMAGES_FAILED = 10
    TOOL_MISSING = 69
    ILLEGAL_TRANSITION = 70
    STORE_UNUSABLE = 71
    EXTRA_MISSING = 72
    REPOSITORY_BUSY = 73
    REJECTED = 74
    NOT_SENT = 75
    MAY_HAVE_ARRIVED = 76
    CREDENTIAL = 77
    INTERRUPTED = 130


EXIT_CODES: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.UNEXPECTED: "unexpected error (rerun with --debug)",
    ExitCode.USAGE: "bad command line",
    ExitCode.INVALID_INPUT: "invalid job file, configuration or image source",
    ExitCode.UNKNOWN_JOB: "unknown job id",
    ExitCode.IMAGE_NOT_FOUND: "image not found in the repository",
    ExitCode.JOBS_FAILED: "--wait saw a job fail or be cancelled",
    ExitCode.CANCEL_UNCONFIRMED: "cancel requested, not yet confirmed by the backend (`cops-grid status`)",
    ExitCode.IMAGES_FAILED: "some images could not be published (the others were; the summary names each)",
    ExitCode.TOOL_MISSING: "a required command-line tool is not installed",
    ExitCode.ILLEGAL_TRANSITION: "illegal state change refused by the store",
    ExitCode.STORE_UNUSABLE: "job store unusable",
    ExitCode.EXTRA_MISSING: "optional Python package not installed (the message names the extra to install)",
    ExitCode.REPOSITORY_BUSY: "image repository locked by another publisher",
    ExitCode.REJECTED: "backend rejected the request (retrying cannot help)",
    ExitCode.NOT_SENT: "backend unreachable, request not sent (jobs kept: `cops-grid sync` retries)",
    ExitCode.MAY_HAVE_ARRIVED: "request may have arrived, reply lost (never resent: `cops-grid sync` asks)",
    ExitCode.CREDENTIAL: "credential missing, expired or unsafe",
    ExitCode.INTERRUPTED: "interrupted",
}

# commands whose exit status is another tool's contract, not this table's
PASSTHROUGH = {
    "pilot": "the payload's own code, or the wrapper's reserved 240-249",
    "validate-site local": "the Nagios state (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)",
}


def exit_codes_epilog() -> str:
    """The ``--help`` epilog: every code once, from :data:`EXIT_CODES`."""
    rows = "; ".join(f"{int(code)} {meaning}" for code, meaning in EXIT_CODES.items())
    own = "; ".join(f"`cops-grid {cmd}` exits with {what}" for cmd, what in PASSTHROUGH.items())
    return f"Exit codes: {rows}.\n\nExceptions: {own}."


class Delivery(str, enum.Enum):
    """What a failed backend request did (see the module docstring)."""

    REJECTED = "rejected"
    NOT_SENT = "not sent"
    MAY_HAVE_ARRIVED = "may have arrived"


class CopsError(Exception):
    """Base of every error a user may see. ``exit_code`` is what the CLI exits with."""

    exit_code: ClassVar[ExitCode] = ExitCode.UNEXPECTED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(CopsError):
    """The command line itself is wrong (conflicting options, a job in the wrong state)."""

    exit_code = ExitCode.USAGE


class JobFileError(CopsError):
    """A job description is invalid: names the file, line and field. Never retried."""

    exit_code = ExitCode.INVALID_INPUT

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        line: int | None = None,
        field: str = "",
        hint: str | None = None,
    ) -> None:
        where = path
        if line is not None:
            where = f"{where}:{line}"
        prefix = ": ".join(p for p in (where, field) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message, hint=hint)
        self.path = path
        self.line = line
        self.field = field
        self.reason = message


class ConfigError(CopsError):
    """The cops-grid configuration or a backend's settings are invalid."""

    exit_code = ExitCode.INVALID_INPUT


class JobNotFound(UsageError):
    """A job id given on the command line is not in the store."""

    exit_code = ExitCode.UNKNOWN_JOB


class IllegalTransition(CopsError):
    """The store refused a state change that the transition table does not allow."""

    exit_code = ExitCode.ILLEGAL_TRANSITION


class StoreError(CopsError):
    """The job store cannot be opened, is locked too long, or has a newer schema."""

    exit_code = ExitCode.STORE_UNUSABLE


class BackendError(CopsError):
    """A backend request failed; ``delivery`` says whether it arrived (see :class:`Delivery`).

    The class sets the default delivery; a caller that knows better passes ``delivery=``.
    ``retry_soon`` is false where repeating the request at once cannot help even though it
    was not sent (a tool that is not installed): the job stays retryable all the same.
    """

    exit_code = ExitCode.REJECTED
    default_delivery: ClassVar[Delivery] = Delivery.REJECTED
    retry_soon: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        backend: str = "",
        hint: str | None = None,
        delivery: Delivery | None = None,
    ) -> None:
        super().__init__(f"{backend}: {message}" if backend else message, hint=hint)
        self.backend = backend
        self.delivery = delivery or self.default_delivery

    @property
    def transient(self) -> bool:
        """The request certainly did not arrive: sending it again is safe."""
        return self.delivery is Delivery.NOT_SENT

    @property
    def uncertain(self) -> bool:
        """The request may have arrived: repeating it could run a job twice."""
        return self.delivery is Delivery.MAY_HAVE_ARRIVED


class BackendRejected(BackendError):
    """The backend answered and refused; retrying the same request cannot help."""


class BackendUnavailable(BackendError):
    """The backend could not be reached; nothing arrived. The job stays in the store."""

    exit_code = ExitCode.NOT_SENT
    default_delivery = Delivery.NOT_SENT


class DeliveryUncertain(BackendError):
    """The request was sent but its reply was lost: it may have been carried out."""

    exit_code = ExitCode.MAY_HAVE_ARRIVED
    default_delivery = Delivery.MAY_HAVE_ARRIVED


class ToolMissing(BackendUnavailable):
    """A command-line tool is not installed: nothing was sent, and retrying now cannot help."""

    exit_code = ExitCode.TOOL_MISSING
    retry_soon = False


class ExtraMissing(CopsError):
    """A feature's optional Python package is not installed: one line naming the feature, the
    package and the command that installs its extra (``computeops_grid/extras.py``)."""

    exit_code = ExitCode.EXTRA_MISSING

    def __init__(self, feature: str, module: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs the Python package {module!r}, which is not installed: "
            f"pip install 'computeops-grid[{extra}]'",
            hint="installed with pipx: pipx install --force 'computeops-grid[all]' (every feature)",
        )
        self.feature = feature
        self.module = module
        self.extra = extra


class UnknownBackend(ConfigError):
    """No backend of that name is registered."""


class CredentialError(CopsError):
    """A credential a backend needs is missing, unsafe, expired or of the wrong VO."""

    exit_code = ExitCode.CREDENTIAL


class CancelUnconfirmed(CopsError):
    """The backend took a cancel request but had not confirmed it when ``cancel`` stopped waiting."""

    exit_code = ExitCode.CANCEL_UNCONFIRMED


class JobsFailed(CopsError):
    """``--wait`` saw at least one job end in failed or cancelled."""

    exit_code = ExitCode.JOBS_FAILED
