"""Collect a job's declared output files (globs) from its work directory, safely.

Shared by backends whose outputs end up in a directory on this machine. Matches that
are symlinks, or that resolve outside the work directory, are skipped and logged.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def collect_outputs(workdir: Path, patterns: Sequence[str], dest: Path) -> list[Path]:
    root = workdir.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    copied: list[Path] = []
    for pattern in patterns:
        for match in sorted(root.glob(pattern)):
            if match.is_symlink() or not match.resolve().is_relative_to(root):
                log.warning("skipping output %s: it points outside the job directory", match)
                continue
            if not match.is_file():
                continue
            target = dest / match.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(match, target)
            copied.append(target)
    return copied
