"""How each backend itself sees a job: its own tools, never cops-grid's status.

``state(job)`` answers in the backend's own words (``RUNNING`` from ``squeue``, ``Killed``
from the DiracX client, ...); ``RUNNING``, ``FINISHED`` (ended with exit code 0) and
``KILLED`` name the words that mean those. :func:`processes_with` looks at the process
table: every backend here runs its payloads on this machine, and each contract job carries
a unique marker in its environment (:data:`MARK`), so a payload still alive is visible.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Protocol

import requests

from computeops_grid.jobs.record import JobRecord
from tests.services.slurm import SlurmCluster

MARK = "COPS_CONTRACT_MARK"  # environment variable of every contract job: its unique marker


def marker(job: JobRecord) -> str:
    return job.spec.environment.get(MARK, "")


def processes_with(mark: str) -> list[int]:
    """Pids of the processes whose command line or environment contains ``mark``."""
    if not mark:
        return []
    found = []
    needle = mark.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes() or needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or a kernel thread
            continue
    return found


def wait_until(what: str, check: Callable[[], bool], timeout: float, step: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(step)


class Probe(Protocol):
    RUNNING: ClassVar[frozenset[str]]
    FINISHED: ClassVar[frozenset[str]]
    KILLED: ClassVar[frozenset[str]]

    def state(self, job: JobRecord) -> str: ...


def wait_state(
    probe: Probe, job: JobRecord, wanted: frozenset[str], timeout: float, step: float = 0.3
) -> str:
    """Poll the backend's own view until it says one of ``wanted``; returns what it said."""
    seen = [""]

    def reached() -> bool:
        seen[0] = probe.state(job)
        return seen[0] in wanted

    try:
        wait_until(f"{type(probe).__name__} says one of {sorted(wanted)}", reached, timeout, step)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last said {seen[0]!r}") from None
    return seen[0]


class LocalProbe:
    """The job's directory as the detached runner leaves it, and the process table."""

    RUNNING: ClassVar[frozenset[str]] = frozenset({"running"})
    FINISHED: ClassVar[frozenset[str]] = frozenset({"exited 0"})
    KILLED: ClassVar[frozenset[str]] = frozenset({"killed"})

    def __init__(self, root: Path) -> None:
        self.root = root

    def state(self, job: JobRecord) -> str:
        jobdir = self.root / job.id
        if processes_with(marker(job)):
            return "running"
        if (jobdir / "cancelled").exists():
            return "killed"
        if (jobdir / "exit_code").exists():
            return f"exited {(jobdir / 'exit_code').read_text().strip()}"
        return "waiting"


class SlurmProbe:
    """``squeue --states=all``, then ``sacct`` once slurmctld forgot the job."""

    RUNNING: ClassVar[frozenset[str]] = frozenset({"RUNNING"})
    FINISHED: ClassVar[frozenset[str]] = frozenset({"COMPLETED"})
    KILLED: ClassVar[frozenset[str]] = frozenset({"CANCELLED"})

    def __init__(self, cluster: SlurmCluster) -> None:
        self.cluster = cluster

    def state(self, job: JobRecord) -> str:
        native = str(job.native_id)
        queued = self.cluster.run("squeue", "-h", "--states=all", "-j", native, "-o", "%T").stdout.split()
        if queued:
            return queued[0]
        accounted = self.cluster.run("sacct", "-n", "-X", "-P", "-j", native, "-o", "State").stdout.split()
        return accounted[0] if accounted else ""


class ArcProbe:
    """The job's state from A-REX's REST interface (``POST jobs?action=status``), with the proxy."""

    RUNNING: ClassVar[frozenset[str]] = frozenset({"RUNNING"})
    FINISHED: ClassVar[frozenset[str]] = frozenset({"FINISHED"})
    KILLED: ClassVar[frozenset[str]] = frozenset({"KILLED"})

    def __init__(self, ce: str, proxy: Path, ca_dir: str) -> None:
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.cert = str(proxy)
        self.http.verify = ca_dir
        self.http.headers["Accept"] = "application/json"

    def state(self, job: JobRecord) -> str:
        jobs_url, _, ce_id = str(job.native_id).rstrip("/").rpartition("/")  # .../rest/1.x/jobs/<id>
        reply = self.http.post(f"{jobs_url}?action=status", json={"job": [{"id": ce_id}]}, timeout=30)
        reply.raise_for_status()
        item = reply.json().get("job", {})
        return str((item[0] if isinstance(item, list) else item).get("state", ""))


class DiracXProbe:
    """The job's ``Status`` from the DiracX server, through the DiracX client."""

    RUNNING: ClassVar[frozenset[str]] = frozenset({"Running"})
    FINISHED: ClassVar[frozenset[str]] = frozenset({"Done"})
    KILLED: ClassVar[frozenset[str]] = frozenset({"Killed"})

    def __init__(self, url: str, credentials: Path) -> None:
        from diracx.client.sync import SyncDiracClient
        from diracx.core.preferences import DiracxPreferences

        self.api = SyncDiracClient(
            diracx_preferences=DiracxPreferences(url=url, credentials_path=credentials)
        )

    def state(self, job: JobRecord) -> str:
        cond = [{"parameter": "JobID", "operator": "eq", "value": int(str(job.native_id))}]
        rows = self.api.jobs.search(parameters=["JobID", "Status"], search=cond)
        return str(rows[0]["Status"]) if rows else ""

    def close(self) -> None:
        self.api.close()


class SwarmProbe:
    """``docker service ps`` and ``docker ps`` against the swarm's engine (the docker CLI)."""

    RUNNING: ClassVar[frozenset[str]] = frozenset({"Running"})
    FINISHED: ClassVar[frozenset[str]] = frozenset({"Complete"})
    KILLED: ClassVar[frozenset[str]] = frozenset({"gone"})  # service removed, no container runs

    def __init__(self, host: str) -> None:
        self.host = host

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "-H", self.host, *args], capture_output=True, text=True, check=False, timeout=60
        )

    def state(self, job: JobRecord) -> str:
        tasks = self.docker("service", "ps", f"cops-{job.id}", "--format", "{{.CurrentState}}")
        running = self.docker("ps", "-q", "--filter", f"label=org.cops-grid.id={job.id}").stdout.split()
        if tasks.returncode != 0:  # no such service
            return "container without service" if running else "gone"
        states = tasks.stdout.split()
        return states[0] if states else "no task"

    def remove_all(self) -> None:
        """Remove the services the test left (finished ones are kept a day for logs)."""
        ids = self.docker("service", "ls", "-q", "--filter", "label=org.cops-grid.id").stdout.split()
        if ids:
            self.docker("service", "rm", *ids)
