"""Helpers to run the probes as real subprocesses, the way Nagios or the bundle runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from computeops_grid import worker

PROBES = worker.path(worker.PROBES)
PILOT = worker.pilot()


@dataclass
class Run:
    code: int
    out: str

    @property
    def status_line(self) -> str:
        return self.out.splitlines()[0]


def probe(name: str, *args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None,
          cwd: Path | None = None) -> Run:  # fmt: skip
    argv = [*(prefix or []), sys.executable, str(PROBES / f"check_{name}.py"), *args]
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        argv, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300, check=False
    )
    assert proc.stderr == "" or "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.strip(), f"probe printed nothing; stderr: {proc.stderr}"
    return Run(proc.returncode, proc.stdout)
