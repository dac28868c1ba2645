"""Errors of the image publisher, all :class:`~computeops_grid.errors.CopsError` subclasses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from computeops_grid.errors import CopsError, ExitCode

if TYPE_CHECKING:
    from computeops_grid.images.unpack import Refusal


class ImageError(CopsError):
    """An image source or name is invalid, or an image operation failed."""

    exit_code = ExitCode.INVALID_INPUT


class ImageNotFound(ImageError):
    """No published image of that name in the repository."""

    exit_code = ExitCode.IMAGE_NOT_FOUND


class UnsafeArchive(ImageError):
    """A layer holds entries the publisher refuses (policy ``fail``) or trips a limit."""

    exit_code = ExitCode.INVALID_INPUT

    def __init__(self, message: str, refusals: Sequence[Refusal] = (), *, hint: str | None = None) -> None:
        details = "".join(f"\n  {r.path}: {r.reason}" for r in list(refusals)[:20])
        more = f"\n  ... and {len(refusals) - 20} more" if len(refusals) > 20 else ""
        super().__init__(message + details + more, hint=hint)
        self.refusals = list(refusals)


class RepositoryBusy(ImageError):
    """Another publisher or gc holds the repository lock for too long."""

    exit_code = ExitCode.REPOSITORY_BUSY


class ToolMissing(ImageError):
    """An external tool (skopeo, buildah, cvmfs_server) is not installed."""

    exit_code = ExitCode.TOOL_MISSING


class ImagesFailed(ImageError):
    """Some images of a sync could not be published; the others were (the summary names each)."""

    exit_code = ExitCode.IMAGES_FAILED


class RegistryError(ImageError):
    """A registry request failed. ``kind`` names the failure in summaries and ``--json``."""

    kind: ClassVar[str] = "registry"


class RegistryUnreachable(RegistryError):
    """No answer: connection refused, name not resolved, timeout, a transfer cut off, 5xx."""

    kind = "unreachable"


class RegistryTlsError(RegistryError):
    """The TLS handshake failed: a certificate not trusted, or a plain-HTTP registry."""

    kind = "tls"


class RegistryAuthRefused(RegistryError):
    """The registry wants credentials that auth.json does not hold, or refused those it holds."""

    kind = "auth"
    exit_code = ExitCode.CREDENTIAL


class RegistryNotFound(RegistryError):
    """The registry has no such repository or tag."""

    kind = "not-found"


class RegistryRateLimited(RegistryError):
    """HTTP 429 after every retry."""

    kind = "rate-limited"
