"""The one output collection: a job's declared output globs, copied from its work directory.

Used by every backend whose outputs reach a directory on this machine (its own job
directory, a downloaded sandbox, a copied container directory), so ``cops-grid get``
behaves the same everywhere. One rule for links: a match that is a symbolic link (or lies
under one) is followed while it stays inside the work directory, and refused (logged,
not copied) when it leads out of it; only regular files are copied.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def collect_outputs(workdir: Path, patterns: Sequence[str], dest: Path) -> list[Path]:
    """Copy the files matching ``patterns`` under ``workdir`` to the same relative paths in ``dest``."""
    root = workdir.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    copied: list[Path] = []
    for pattern in patterns:
        for match in sorted(root.glob(pattern)):
            real = match.resolve()
            if not real.is_relative_to(root):
                log.warning("refusing output %s: it leads outside the job directory (to %s)", match, real)
                continue
            if not real.is_file():
                continue
            target = dest / match.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(real, target)
            copied.append(target)
    return copied
