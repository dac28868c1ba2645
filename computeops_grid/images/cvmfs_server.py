"""Publishing inside a CVMFS stratum-0 transaction with the real ``cvmfs_server`` CLI.

``cvmfs_server transaction REPO`` opens the writable union at ``/cvmfs/REPO``; the publish
writes there; ``cvmfs_server publish REPO`` commits it, and on any failure (including a
failed ``publish``) ``cvmfs_server abort -f REPO`` throws the transaction away. This cannot
run on a machine without a stratum-0; its tests use a recording stand-in executable.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from computeops_grid.images.errors import ImageError, ToolMissing

log = logging.getLogger(__name__)


def _run(binary: str, *args: str) -> None:
    argv = [binary, *args]
    log.info("running %s", " ".join(argv))
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()[-400:]
        raise ImageError(
            f"{' '.join(argv)} failed (exit {proc.returncode}): {output}",
            hint="check the repository with 'cvmfs_server list' and that you are its owner",
        )


@contextmanager
def transaction(repo: str) -> Iterator[None]:
    """Run the body inside ``cvmfs_server transaction``; publish on success, abort on failure."""
    binary = shutil.which("cvmfs_server")
    if binary is None:
        raise ToolMissing(
            "cvmfs_server is not installed: --cvmfs-repo needs a CVMFS stratum-0 (release manager)",
            hint="run on the stratum-0, or publish into a plain directory with --repo-root",
        )
    _run(binary, "transaction", repo)
    try:
        yield
    except BaseException:
        log.warning("publish failed; aborting the CVMFS transaction of %s", repo)
        _abort(binary, repo)
        raise
    try:
        _run(binary, "publish", repo)
    except ImageError:
        _abort(binary, repo)
        raise


@contextmanager
def maybe_transaction(repo: str | None) -> Iterator[None]:
    """:func:`transaction` when ``repo`` is given, else nothing (a plain directory repository)."""
    if repo:
        with transaction(repo):
            yield
    else:
        yield


def _abort(binary: str, repo: str) -> None:
    try:
        _run(binary, "abort", "-f", repo)
    except ImageError as exc:
        log.error("abort failed too: %s", exc.message)
