"""Detached supervisor of one local job (standard library only: starts in milliseconds).

``python -m computeops_grid.backends.local.runner JOBDIR`` is started by the local
backend in its own session, so the job survives the CLI exiting. Files in JOBDIR:

* ``job.json``      what to run (argv, env, slots)        - written by the backend
* ``runner.lock``   flock held for the runner's lifetime   - "a runner is alive"
* ``runner.pid``    the runner's pid (= process group of the payload)
* ``started``       written once when the payload starts   - it never starts twice
* ``stdout`` / ``stderr``                                   - the payload's streams
* ``exit_code``     written atomically when the payload ends (128+N when killed by N)
* ``cancelled``     written by ``cancel`` before it signals the process group
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import IO


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def lock_held(path: Path) -> bool:
    """True when some process holds the flock on ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _take_slot(slots_dir: Path, slots: int) -> IO[bytes]:
    """Hold one of ``slots`` flock files: at most that many payloads run at once."""
    slots_dir.mkdir(parents=True, exist_ok=True)
    order = list(range(slots))
    random.shuffle(order)
    handles = [open(slots_dir / f"slot-{i}", "ab") for i in order]  # noqa: SIM115
    try:
        while True:
            for handle in handles:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                for other in handles:
                    if other is not handle:
                        other.close()
                return handle
            time.sleep(0.05 + random.random() * 0.1)  # noqa: S311
    except BaseException:
        for handle in handles:
            handle.close()
        raise


def run(jobdir: Path) -> int:
    lock = open(jobdir / "runner.lock", "ab")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another runner owns this job
    if (jobdir / "started").exists() or (jobdir / "exit_code").exists() or (jobdir / "cancelled").exists():
        return 0  # never run a payload twice
    spec = json.loads((jobdir / "job.json").read_text(encoding="utf-8"))
    write_atomic(jobdir / "runner.pid", str(os.getpid()))
    slot = _take_slot(Path(spec["slots_dir"]), int(spec["slots"]))
    if (jobdir / "cancelled").exists():
        return 0
    write_atomic(jobdir / "started", f"{time.time():.6f}")
    workdir = jobdir / "work"
    with open(jobdir / "stdout", "wb") as out, open(jobdir / "stderr", "wb") as err:
        try:
            proc = subprocess.run(
                spec["argv"],
                cwd=workdir,
                env=spec["env"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                check=False,
            )
            code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        except OSError as exc:
            err.write(f"cops-grid local runner: cannot start {spec['argv'][0]}: {exc}\n".encode())
            code = 127
    write_atomic(jobdir / "exit_code", str(code))
    slot.close()
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1])))
