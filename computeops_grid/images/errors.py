"""Errors of the image publisher, all :class:`~computeops_grid.errors.CopsError` subclasses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

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
