"""Repository locks (``fcntl.flock``, released by the kernel when a publisher dies).

* ``gc.lock``: publishers hold it shared for their whole run; ``gc``/``rm`` take it
  exclusive, so gc never deletes a staging dir or a layer a running publish is using.
* ``commit.lock``: exclusive around the short commit phase (renames, symlink swap).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from computeops_grid.images.errors import RepositoryBusy


@contextmanager
def flock(path: Path, *, exclusive: bool, timeout: float = 600.0) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RepositoryBusy(
                        f"{path} is held by another publisher or gc for more than {timeout:.0f}s",
                        hint="wait for it to finish, or check for a hung 'cops-grid image' process",
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
