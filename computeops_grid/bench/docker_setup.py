"""Docker for the study: use a dockerd that answers, else start a private one, stop it after.

The private daemon (``daemons.PrivateDockerd``) lives in a short temp directory with its own
data root, exec root and socket, and no iptables or bridge changes. The study talks to it
through ``DOCKER_HOST``, which :class:`~computeops_grid.bench.runtimes.Adapter` passes to
the docker client that the wrapper's adapter starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from computeops_grid.errors import CopsError

log = logging.getLogger(__name__)

PING_TIMEOUT = 15.0


def answering_daemon() -> str:
    """The server version of a dockerd that answers the current environment's client, or ""."""
    from computeops_grid.bench.daemons import docker_cli  # noqa: PLC0415 - only with docker

    cli = docker_cli()
    if cli is None:
        return ""
    argv = [cli, "version", "--format", "{{.Server.Version}}"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=PING_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


@contextlib.contextmanager
def docker_for_study(wanted: bool) -> Iterator[str]:
    """Yield a note for the report; ``DOCKER_HOST`` points at a working dockerd when one could run."""
    if not wanted:
        yield ""
        return
    running = answering_daemon()
    if running:
        yield f"docker: the dockerd already running here (server {running}) was used"
        return
    from computeops_grid.bench.daemons import PrivateDockerd  # noqa: PLC0415 - only with docker

    root = Path(tempfile.mkdtemp(prefix="cb-", dir="/tmp"))  # short: containerd's socket path limit
    daemon = PrivateDockerd(root)
    before = os.environ.get("DOCKER_HOST")
    try:
        daemon.start()
    except CopsError as exc:
        shutil.rmtree(root, ignore_errors=True)
        log.warning("private dockerd did not start: %s", exc.message)
        yield f"docker: no dockerd answered and a private one did not start: {exc.message[:300]}"
        return
    os.environ["DOCKER_HOST"] = daemon.host
    try:
        yield f"docker: no dockerd was running; the study started a private one ({root}) and stopped it after"
    finally:
        if before is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = before
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)
