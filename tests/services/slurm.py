"""A real single-node Slurm (munged + slurmctld + slurmd) on loopback for test sessions.

Follows ../shared/notes/slurm-single-node.md: own munge key and socket, non-default
ports picked free at start, ``CPUs=64`` with ``config_overrides`` so trivial arrays
finish quickly, no accounting. ``stop()`` shuts everything down and reaps the PIDs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SLURM_CONF = """\
ClusterName=copstest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/msock/munge.sock
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/slurmd-%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
MinJobAge={min_job_age}
MailProg=/bin/true
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=64000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def world_dir(prefix: str) -> Path:
    """A temp dir whose parents are world-executable (munged checks), mode 755."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@dataclass
class SlurmCluster:
    root: Path
    conf: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, check=False, timeout=60)

    def wait_idle(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.run("sinfo", "-h", "-N", "-o", "%t").stdout.strip() == "idle":
                return
            time.sleep(0.1)
        logs = (self.root / "log" / "slurmctld.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"Slurm node did not become idle in {timeout} s:\n{logs}")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_slurm(*, cpus: int = 64, min_job_age: int = 30) -> SlurmCluster:
    """Start munged, slurmctld and slurmd under a fresh /tmp dir; returns when the node is idle."""
    for tool in ("munged", "mungekey", "slurmctld", "slurmd", "sbatch"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (see etc/deps/apt-grid.txt)")
    root = world_dir("cops-slurm-")
    for sub, mode in (("mkey", 0o700), ("msock", 0o755), ("state", 0o755), ("spool", 0o755), ("log", 0o755)):
        (root / sub).mkdir(mode=mode)
        (root / sub).chmod(mode)
    conf = root / "slurm.conf"
    host = socket.gethostname().split(".")[0]
    conf.write_text(
        SLURM_CONF.format(
            host=host,
            root=root,
            cpus=cpus,
            ctld_port=free_port(),
            slurmd_port=free_port(),
            min_job_age=min_job_age,
        )
    )
    cluster = SlurmCluster(root=root, conf=conf)
    key = root / "mkey" / "munge.key"
    subprocess.run(["mungekey", "-c", "-k", str(key)], check=True, capture_output=True)
    sock = root / "msock" / "munge.sock"
    munged = [
        "munged",
        "-F",
        f"--key-file={key}",
        f"--socket={sock}",
        f"--pid-file={root}/mkey/munged.pid",
        f"--log-file={root}/mkey/munged.log",
        f"--seed-file={root}/mkey/munged.seed",
    ]
    cluster.procs.append(subprocess.Popen(munged, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        for daemon in (["slurmctld", "-D", "-c"], ["slurmd", "-D"]):
            out = (root / "log" / f"{daemon[0]}.out").open("wb")
            cluster.procs.append(
                subprocess.Popen([*daemon, "-f", str(conf)], env=cluster.env, stdout=out, stderr=out)
            )
            out.close()
        cluster.wait_idle()
    except BaseException:
        cluster.stop()
        raise
    return cluster
