"""Typed errors: a message for the user, a hint saying what to do, and an exit code.

Library code raises these; only the CLI (``cli/output.py``) turns them into output.
"""

from __future__ import annotations


class CopsError(Exception):
    """Base of every error a user may see. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(CopsError):
    """The command line itself is wrong (unknown job id, conflicting options)."""

    exit_code = 2


class JobFileError(CopsError):
    """A job description is invalid: names the file, line and field. Never retried."""

    exit_code = 3

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

    exit_code = 3


class JobNotFound(UsageError):
    """A job id given on the command line is not in the store."""

    exit_code = 4


class IllegalTransition(CopsError):
    """The store refused a state change that the transition table does not allow."""

    exit_code = 70


class StoreError(CopsError):
    """The job store cannot be opened, is locked too long, or has a newer schema."""

    exit_code = 71


class BackendError(CopsError):
    """A backend refused or failed an operation. ``transient`` errors are retryable."""

    exit_code = 74
    transient = False

    def __init__(self, message: str, *, backend: str = "", hint: str | None = None) -> None:
        super().__init__(f"{backend}: {message}" if backend else message, hint=hint)
        self.backend = backend


class BackendUnavailable(BackendError):
    """The backend could not be reached. The job stays in the store and can be retried."""

    exit_code = 75
    transient = True


class UnknownBackend(ConfigError):
    """No backend of that name is registered."""


class CredentialError(CopsError):
    """A credential a backend needs is missing, unsafe, expired or of the wrong VO."""

    exit_code = 77


class JobsFailed(CopsError):
    """``--wait`` saw at least one job end in failed or cancelled."""

    exit_code = 8
