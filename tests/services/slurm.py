"""A real single-node Slurm (munged + slurmctld + slurmd) on loopback for test sessions.

The daemons are started by :func:`computeops_grid.bench.daemons.start_slurm` (shared
with ``cops-grid bench orchestrators``, which starts the same private cluster when no
Slurm answers). It follows ../shared/notes/slurm-single-node.md: own munge key and
socket, non-default ports picked free at start, ``CPUs=64`` with ``config_overrides``
so trivial arrays finish quickly. ``accounting=True`` (the session's cluster) adds a
private MariaDB and slurmdbd on loopback (docs/notes/slurmdbd-mariadb.md), so ``sacct``
answers. ``stop()`` shuts everything down and reaps the PIDs.
"""

from __future__ import annotations

import socket

from computeops_grid.bench.daemons import SLURM_CONF, SlurmCluster, start_slurm, world_dir

__all__ = ["SLURM_CONF", "SlurmCluster", "free_port", "start_slurm", "world_dir"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
