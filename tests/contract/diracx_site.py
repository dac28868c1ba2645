"""The site side of the DiracX contract jobs: ``python -m tests.contract.diracx_site URL
CREDENTIALS WORKDIR JOB_ID...`` runs the jobs one after the other with the pilot-side
helper, heartbeating every second, so a kill stops the payload within seconds."""

from __future__ import annotations

import sys
from pathlib import Path

from computeops_grid.backends.dirac.agent import run_job
from computeops_grid.backends.dirac.diracx_client import DiracXClient


def main(argv: list[str]) -> int:
    url, credentials, workdir, *ids = argv
    with DiracXClient(url, Path(credentials)) as client:
        for job_id in ids:
            run_job(client, int(job_id), Path(workdir), heartbeat=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
