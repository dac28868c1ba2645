"""One rig per backend for the fault matrix: its settings, how each fault is injected, and
the backend's own view of the jobs it holds.

A rig never asks the backend classes (their ``lookup`` or ``status``) what the backend
has: :meth:`Rig.view` reads ``squeue``, A-REX's job list and job names over REST, DiracX's
job search, ``docker service ls`` or the local job directories (and what each job's
payload wrote), and counts jobs by the cops-grid id in their native name.

Faults (the test ids' second half):

* ``lost-reply``: the backend accepted the submit and its reply never came back;
* ``gateway-504``: the same, but a gateway in between answers 504 instead of the reply
  (client libraries retry 5xx answers to POST: azure-core does);
* ``down``: the backend cannot be reached before the submit;
* ``missing-tool``: the command-line tool a backend runs is not installed;
* ``killed``: the client gets SIGKILL in the middle of a bulk submit.

Jobs are kept from running where running them adds nothing but load (held in Slurm,
more cores than any node has for A-REX and swarm): the faults are about delivery.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from computeops_grid.backends.arc.rest import ArcRest
from computeops_grid.backends.dirac.diracx_client import DiracXClient
from computeops_grid.bench.daemons import PrivateDockerd, SlurmCluster
from tests.services.arc import CERTS, HOSTCERT, HOSTKEY, VO, ArcCE
from tests.services.diracx import DiracXServer
from tests.services.relay import Relay

FOUND = "found on the backend by sync"  # the history message of logic/sync.py
FAULTS = ("lost-reply", "gateway-504", "down", "missing-tool", "killed")
NO_HTTP = "{what} talks to {peer} without HTTP: there is no gateway to answer 504 in place of the reply"
NO_TOOL = "{what} runs no command-line tool: nothing to uninstall (`down` covers an unreachable {peer})"


@dataclass(frozen=True)
class StoreJob:
    id: str
    name: str
    bulk_id: str | None
    index: int
    state: str
    native_id: str | None
    found_by_sync: bool = False  # `sync` found it on the backend (its submit's reply was lost)


def store_jobs(home: Path) -> list[StoreJob]:
    """The store's jobs, read from its SQLite file (also while a submit process runs)."""
    db = home / "jobs.sqlite"
    if not db.exists():
        return []
    con = sqlite3.connect(db, timeout=30)
    try:
        rows = con.execute("SELECT id, name, bulk_id, idx, state, native_id FROM jobs").fetchall()
        found = {r[0] for r in con.execute("SELECT job_id FROM history WHERE message=?", (FOUND,))}
    except sqlite3.OperationalError:  # the schema is being created
        return []
    finally:
        con.close()
    return [StoreJob(str(r[0]), str(r[1]), r[2], int(r[3]), str(r[4]), r[5], r[0] in found) for r in rows]


@dataclass
class Injection:
    """A fault: the backend's settings and the submit's environment while it lasts."""

    settings: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    code: int = 76  # what `cops-grid submit` exits with (negative: killed by that signal)
    jobs: int = 10  # parametric bulk size
    groups: int = 1  # parametric jobs in the file (a Slurm array, an ARC POST... each)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool_dir(root: Path, links: Sequence[str] = (), scripts: dict[str, str] | None = None) -> Path:
    """A bin directory: the real ``links`` and shell ``scripts`` (name -> body)."""
    root.mkdir(parents=True, exist_ok=True)
    for tool in links:
        real = shutil.which(tool)
        assert real is not None, f"{tool} is not installed"
        (root / tool).symlink_to(real)
    for name, body in (scripts or {}).items():
        path = root / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return root


def real(tool: str) -> str:
    found = shutil.which(tool)
    assert found is not None, f"{tool} is not installed"
    return found


class Rig:
    """A backend in the fault matrix (see the module docstring)."""

    backend: ClassVar[str]  # its name in the configuration
    spec: ClassVar[dict[str, Any]] = {}  # extra job fields (keep the jobs from running)
    skips: ClassVar[dict[str, str]] = {}  # fault -> why it cannot be produced here
    kill_jobs: ClassVar[int] = 200

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.relay: Relay | None = None

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def inject(self, fault: str) -> Injection:
        return getattr(self, fault.replace("-", "_"))()  # type: ignore[no-any-return]

    def killed(self) -> Injection:
        return Injection(self.settings(), jobs=self.kill_jobs, groups=2, code=-9)

    def submit_requests(self) -> int:
        """Submit requests the relay forwarded (a library repeating a lost one shows here)."""
        raise NotImplementedError

    def seen(self, jobs: Sequence[StoreJob]) -> int:
        """How many of ``jobs`` the backend has (cheap: polled to time the kill)."""
        return sum(len(v) for v in self.view(jobs).values())

    def view(self, jobs: Sequence[StoreJob]) -> dict[str, list[str]]:
        """cops-grid id -> the native ids of the backend's jobs named after it."""
        raise NotImplementedError

    def native(self, job: StoreJob) -> str:
        """The store's native id in the form :meth:`view` gives it."""
        return job.native_id or ""

    def stranded(self, jobs: Sequence[StoreJob]) -> dict[str, str]:
        """Jobs the backend has but will never run (id -> why); the rig waits where needed."""
        return {}

    def cleanup(self, jobs: Sequence[StoreJob]) -> None:
        pass

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()
            self.relay = None


# -- local -----------------------------------------------------------------------------------

# The runner is the real one; the payload (the pilot's interpreter) is replaced by a line in
# runs.txt of the job's work directory: a job run twice has two lines.
LOCAL_PYTHON = """case "$*" in
*computeops_grid.backends.local.runner*) exec "{python}" "$@" ;;
esac
echo ran >> runs.txt"""


class LocalRig(Rig):
    backend = "local"
    skips: ClassVar[dict[str, str]] = {
        "gateway-504": NO_HTTP.format(what="the local backend", peer="its job directories"),
        "down": "the local backend is this machine: there is no service to stop or port to close "
        "(its one tool missing is local-missing-tool; its lost reply, the client dying right "
        "after the job directory was renamed into place, is local-lost-reply)",
    }

    def __init__(self, tmp: Path, home: Path) -> None:
        super().__init__(tmp)
        self.home = home
        stub = tool_dir(tmp / "python", scripts={"python": LOCAL_PYTHON.format(python=sys.executable)})
        self.python = str(stub / "python")

    def settings(self) -> dict[str, Any]:
        return {"max_parallel": 4, "python": self.python}

    def lost_reply(self) -> Injection:
        """``setsid`` (which starts the job's runner) kills the client as soon as the runner is
        started: the job was accepted, its answer never reached the store."""
        body = f'"{real("setsid")}" "$@"\nkill -9 "$PPID"'
        bin_dir = tool_dir(self.tmp / "bin", scripts={"setsid": body})
        return Injection(self.settings(), env={"PATH": f"{bin_dir}:{os.environ['PATH']}"}, code=-9)

    def missing_tool(self) -> Injection:
        """No ``setsid`` on PATH (macOS has none)."""
        empty = tool_dir(self.tmp / "empty")
        return Injection(self.settings(), env={"PATH": str(empty)}, code=69)

    def _dirs(self) -> list[Path]:
        root = self.home / "jobs" / "local"
        return [d for d in root.iterdir() if not d.name.startswith(".")] if root.is_dir() else []

    def seen(self, jobs: Sequence[StoreJob]) -> int:
        return len(self._dirs())

    def _runs(self, jobdir: Path) -> int:
        runs = jobdir / "work" / "runs.txt"
        return len(runs.read_text().splitlines()) if runs.exists() else 0

    def view(self, jobs: Sequence[StoreJob]) -> dict[str, list[str]]:
        """Job directories, once the runners are done; a payload that ran twice counts twice."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not all((d / "exit_code").exists() for d in self._dirs()):
            time.sleep(0.2)
        return {d.name: [str(d)] * max(1, self._runs(d)) for d in self._dirs()}

    def stranded(self, jobs: Sequence[StoreJob]) -> dict[str, str]:
        return {d.name: "its payload never ran" for d in self._dirs() if not self._runs(d)}


# -- Slurm -----------------------------------------------------------------------------------

SLURM_TOOLS = ("squeue", "sacct", "scancel", "sinfo", "scontrol")


class SlurmRig(Rig):
    backend = "slurm"
    skips: ClassVar[dict[str, str]] = {
        "gateway-504": NO_HTTP.format(what="sbatch", peer="slurmctld (Slurm RPC over munge)")
        + "; its lost reply is a timeout (slurm-lost-reply)",
    }

    def __init__(self, tmp: Path, cluster: SlurmCluster) -> None:
        super().__init__(tmp)
        self.cluster = cluster

    def settings(self) -> dict[str, Any]:
        # held: the array stays pending (squeue shows it), nothing runs
        return {"slurm_conf": str(self.cluster.conf), "sbatch_options": ["--hold"]}

    def lost_reply(self) -> Injection:
        """``sbatch`` submits, then answers after the client's 3 s timeout."""
        body = f'"{real("sbatch")}" "$@"\nexec sleep 60'
        bin_dir = tool_dir(self.tmp / "bin", SLURM_TOOLS, {"sbatch": body})
        return Injection({**self.settings(), "bin_dir": str(bin_dir), "command_timeout": 3})

    def down(self) -> Injection:
        """slurmctld unreachable: the client's slurm.conf names a closed port (MessageTimeout
        2 s: sbatch gives up after 1 s instead of 9)."""
        text = self.cluster.conf.read_text()
        lines = [ln for ln in text.splitlines() if not ln.startswith(("SlurmctldPort=", "MessageTimeout="))]
        conf = self.tmp / "slurm-down.conf"
        conf.write_text("\n".join([f"SlurmctldPort={closed_port()}", "MessageTimeout=2", *lines]) + "\n")
        return Injection({**self.settings(), "slurm_conf": str(conf)}, code=75)

    def missing_tool(self) -> Injection:
        return Injection({**self.settings(), "bin_dir": str(tool_dir(self.tmp / "empty"))}, code=69)

    def killed(self) -> Injection:
        """Two parametric jobs (two arrays); ``sbatch`` lingers 3 s after submitting, so the
        kill lands after the first array was accepted and before the client recorded it."""
        body = f'"{real("sbatch")}" "$@"\nrc=$?\nsleep 3\nexit $rc'
        bin_dir = tool_dir(self.tmp / "bin", SLURM_TOOLS, {"sbatch": body})
        return Injection({**self.settings(), "bin_dir": str(bin_dir)}, jobs=200, groups=2, code=-9)

    def _squeue(self) -> list[tuple[str, str, int | None]]:
        proc = self.cluster.run("squeue", "--noheader", "--array", "--states=all", "--format=%i|%j|%K")
        assert proc.returncode == 0, proc.stderr
        rows = []
        for line in proc.stdout.splitlines():
            native, name, index = line.strip().split("|")
            rows.append((native, name, int(index) if index.isdigit() else None))
        return rows

    def view(self, jobs: Sequence[StoreJob]) -> dict[str, list[str]]:
        """squeue (held jobs stay in it): ``cops-<id>``, or ``cops-<bulk id>`` and the array index."""
        names: dict[tuple[str, int | None], str] = {}
        for job in jobs:
            key = (f"cops-{job.bulk_id}", job.index) if job.bulk_id else (f"cops-{job.id}", None)
            names[key] = job.id
        out: dict[str, list[str]] = {}
        for native, name, index in self._squeue():
            if (name, index) in names:
                out.setdefault(names[(name, index)], []).append(native)
        return out

    def cleanup(self, jobs: Sequence[StoreJob]) -> None:
        ids = sorted({n.split("_")[0] for natives in self.view(jobs).values() for n in natives})
        if ids:
            self.cluster.run("scancel", *ids)


# -- ARC CE (REST, or the arc* tools) --------------------------------------------------------


class ArcRig(Rig):
    backend = "arc"
    transport: ClassVar[str] = "rest"
    spec: ClassVar[dict[str, Any]] = {"resources": {"cores": 4096}}  # pending in Slurm for ever

    def __init__(self, tmp: Path, ce: ArcCE, proxy: Path, images: Path) -> None:
        super().__init__(tmp)
        self.ce = ce
        self.proxy = proxy
        self.images = images
        self.rest = ArcRest(ce.url, proxy, str(CERTS), timeout=120)
        self.before = set(self.rest.list_jobs())  # the session's other jobs on this CE

    def settings(self) -> dict[str, Any]:
        return {
            "ce": self.ce.url, "proxy": str(self.proxy), "ca_dir": str(CERTS), "queue": "debug",
            "vo": VO, "image_root": str(self.images), "transport": self.transport,
        }  # fmt: skip

    def down(self) -> Injection:
        """Nothing listens on the CE's port."""
        return Injection({**self.settings(), "ce": f"https://{self.ce.host}:{closed_port()}/arex"}, code=75)

    def _relayed(self, answer: int | None) -> Injection:
        self.relay = Relay(
            (self.ce.host, self.ce.port), proxy=self.proxy, host_cert=HOSTCERT, host_key=HOSTKEY, ca_dir=CERTS
        )
        self.relay.drop_reply_to("POST", "jobs?action=new", answer=answer)
        return Injection({**self.settings(), "ce": f"https://{self.ce.host}:{self.relay.port}/arex"})

    def submit_requests(self) -> int:
        assert self.relay is not None
        return self.relay.requests("POST", "jobs?action=new")

    def _ours(self) -> list[str]:
        return sorted(set(self.rest.list_jobs()) - self.before)

    def seen(self, jobs: Sequence[StoreJob]) -> int:
        return len(self._ours())

    def view(self, jobs: Sequence[StoreJob]) -> dict[str, list[str]]:
        """A-REX's job list over REST and each job's name (``cops-<id>``): GLUE2 ``Name``, or
        for a job A-REX has not processed yet (no name in its info), its stored description."""
        wanted = {f"cops-{j.id}": j.id for j in jobs}
        out: dict[str, list[str]] = {}
        for ce_id, activity in self.rest.activities(self._ours()).items():
            name = str(activity.get("Name") or self.rest.description_name(ce_id))
            if name in wanted:
                out.setdefault(wanted[name], []).append(ce_id)
        return out

    def native(self, job: StoreJob) -> str:
        return (job.native_id or "").rstrip("/").rsplit("/", 1)[-1]

    def stranded(self, jobs: Sequence[StoreJob]) -> dict[str, str]:
        """A job whose submit reply was lost never got its wrapper from the client: ``sync``
        must have uploaded it, or A-REX waits for it until it gives up. Checked for the jobs
        ``sync`` found (the others were uploaded by the submit that recorded them); a job
        that ran has its wrapper's report instead (A-REX removes inputs when a job ends)."""
        out = {}
        for job in jobs:
            if not job.found_by_sync:
                continue
            listing = self.rest._request("GET", f"jobs/{self.native(job)}/session")
            payload = listing.json() if listing.content.strip() else {}  # empty: no files at all
            names = payload.get("file", []) if isinstance(payload, dict) else []
            files = {names} if isinstance(names, str) else set(names)
            if not {"cops_pilot.py", "cops-report.json"} & files:
                out[job.id] = f"the wrapper never reached its session directory ({sorted(files)})"
        return out

    def cleanup(self, jobs: Sequence[StoreJob]) -> None:
        """Kill this test's jobs and wait until A-REX is through with them (then clean them
        away): the session's A-REX stays idle for the tests after this one."""
        ours = self._ours()
        if not ours:
            return
        self.rest.kill(ours)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            states = self.rest.status(ours)
            if all(s.upper() in ("FINISHED", "FAILED", "KILLED", "DELETED") for s in states.values()):
                break
            time.sleep(2)
        self.rest.clean(ours)


class ArcRestRig(ArcRig):
    """ARC over REST. Its kill bulk is 2 x 20 jobs: with 200, the test itself took 35-55 s,
    but A-REX (one job manager on two cores) then needed minutes to work through them and
    their kill, and the session's later ARC tests timed out behind them."""

    kill_jobs = 40
    skips: ClassVar[dict[str, str]] = {
        "missing-tool": NO_TOOL.format(what="ARC over REST (requests)", peer="CE"),
    }

    def lost_reply(self) -> Injection:
        """A TLS relay forwards the submit; A-REX answers 201; the relay closes the connection."""
        return self._relayed(None)

    def gateway_504(self) -> Injection:
        return self._relayed(504)


class ArcCliRig(ArcRig):
    """ARC through ``arcsub`` & co (found on PATH). ``arcsub`` takes about 1.4 s per job here
    (it delegates and uploads job by job), so its bulks are small: 3 jobs for the lost reply
    and ``down``, 2 x 5 for the kill."""

    transport = "cli"
    kill_jobs = 10
    spec: ClassVar[dict[str, Any]] = {}  # arcsub matches jobs to the CE's queues: these few run
    skips: ClassVar[dict[str, str]] = {
        "gateway-504": "arcsub's job ids are the URLs of the endpoint it talked to: behind a relay "
        "they would name the relay, gone after the fault; arc-rest-gateway-504 loses the reply "
        "of the same A-REX REST call",
    }

    def lost_reply(self) -> Injection:
        """``arcsub`` (first on PATH) submits, then answers after the client's timeout: ``timeout:
        2`` gives arcsub 2 x 4 + 10 = 18 s."""
        bin_dir = tool_dir(self.tmp / "bin", scripts={"arcsub": f'"{real("arcsub")}" "$@"\nexec sleep 300'})
        env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
        return Injection({**self.settings(), "timeout": 2}, env=env, jobs=3)

    def down(self) -> Injection:
        injection = super().down()
        injection.jobs = 3
        return injection

    def missing_tool(self) -> Injection:
        """No ARC client on PATH (the VOMS clients are: the proxy is checked with them)."""
        bin_dir = tool_dir(self.tmp / "bin", ("voms-proxy-init", "voms-proxy-info", "voms-proxy-destroy"))
        return Injection(self.settings(), env={"PATH": str(bin_dir)}, code=69, jobs=3)


# -- DiracX ----------------------------------------------------------------------------------


class DiracXRig(Rig):
    backend = "diracx"
    skips: ClassVar[dict[str, str]] = {
        "missing-tool": NO_TOOL.format(what="DiracX (diracx-client over HTTP)", peer="server"),
    }

    def __init__(self, tmp: Path, server: DiracXServer, credentials: Path) -> None:
        super().__init__(tmp)
        self.server = server
        self.credentials = credentials
        self.client = DiracXClient(server.url, credentials)

    def settings(self) -> dict[str, Any]:
        return {"url": self.server.url, "credentials": str(self.credentials)}

    def _relayed(self, answer: int | None) -> Injection:
        self.relay = Relay(("127.0.0.1", self.server.port))
        self.relay.drop_reply_to("POST", "/api/jobs/jdl", answer=answer)
        return Injection({**self.settings(), "url": f"http://127.0.0.1:{self.relay.port}"})

    def lost_reply(self) -> Injection:
        """A relay forwards the (parametric) submit; DiracX inserts the jobs; the connection is closed."""
        return self._relayed(None)

    def gateway_504(self) -> Injection:
        """The relay answers 504 after DiracX inserted the jobs (azure-core retries 504 to a POST)."""
        return self._relayed(504)

    def down_after_accept(self) -> Injection:
        """DiracX answers the parametric submit, then cannot be reached: the client cannot
        confirm the jobs (they wait in ``Submitting`` for it), so it cannot know they exist."""
        self.relay = Relay(("127.0.0.1", self.server.port))
        self.relay.down_after_reply_to("POST", "/api/jobs/jdl")
        return Injection({**self.settings(), "url": f"http://127.0.0.1:{self.relay.port}"})

    def submit_requests(self) -> int:
        assert self.relay is not None
        return self.relay.requests("POST", "/api/jobs/jdl")

    def down(self) -> Injection:
        return Injection({**self.settings(), "url": f"http://127.0.0.1:{closed_port()}"}, code=75)

    def _rows(self, jobs: Sequence[StoreJob]) -> list[tuple[str, dict[str, Any]]]:
        """(cops-grid id, search row) of every DiracX job named ``<name>.<cops-grid id>``."""
        by_name = {f"{j.name}.{j.id}": j.id for j in jobs}
        names = sorted(by_name)
        rows = []
        for start in range(0, len(names), 100):
            cond = [{"parameter": "JobName", "operator": "in", "values": names[start : start + 100]}]
            rows += self.client.search(cond, ["JobID", "JobName", "Status"])
        return [(by_name[str(r["JobName"])], r) for r in rows if str(r["JobName"]) in by_name]

    def view(self, jobs: Sequence[StoreJob]) -> dict[str, list[str]]:
        """DiracX's job search by ``JobName``."""
        out: dict[str, list[str]] = {}
        for job_id, row in self._rows(jobs):
            out.setdefault(job_id, []).append(str(row["JobID"]))
        return out

    def stranded(self, jobs: Sequence[StoreJob]) -> dict[str, str]:
        """Parametric jobs wait in ``Submitting`` until their owner confirms them: a job never
        confirmed is never matched, whatever the store says."""
        return {
            job_id: f"DIRAC job {row['JobID']} still Submitting: never confirmed, it will never run"
            for job_id, row in self._rows(jobs)
            if row.get("Status") == "Submitting"
        }

    def cleanup(self, jobs: Sequence[StoreJob]) -> None:
        ids = [int(i) for natives in self.view(jobs).values() for i in natives]
        for start in range(0, len(ids), 500):
            self.client.set_status(
                {
                    i: [{"Status": "Killed", "MinorStatus": "fault test over"}]
                    for i in ids[start : start + 500]
                }
            )

    def close(self) -> None:
        super().close()
        self.client.close()


# -- Docker Swarm ----------------------------------------------------------------------------


class SwarmRig(Rig):
    backend = "swarm"
    spec: ClassVar[dict[str, Any]] = {"resources": {"cores": 64, "memory": "16MiB"}}  # no node fits: pending
    skips: ClassVar[dict[str, str]] = {
        "missing-tool": NO_TOOL.format(what="swarm (the docker SDK over the Engine API)", peer="engine"),
    }

    def __init__(self, tmp: Path, daemon: PrivateDockerd) -> None:
        super().__init__(tmp)
        self.daemon = daemon
        self.sockets = Path(tempfile.mkdtemp(prefix="cops-flt-"))  # unix socket paths: < 108 bytes

    def settings(self) -> dict[str, Any]:
        return {"docker_host": self.daemon.host}

    def _relayed(self, answer: int | None) -> Injection:
        listen = self.sockets / "relay.sock"
        self.relay = Relay(self.daemon.socket, listen=listen)
        self.relay.drop_reply_to("POST", "/services/create", answer=answer)
        return Injection({**self.settings(), "docker_host": f"unix://{listen}"})

    def lost_reply(self) -> Injection:
        """A relay on a unix socket forwards the service creation; the engine creates it; the
        connection is closed. The jobs after it are not sent (the submit stops)."""
        return self._relayed(None)

    def gateway_504(self) -> Injection:
        return self._relayed(504)

    def submit_requests(self) -> int:
        assert self.relay is not None
        return self.relay.requests("POST", "/services/create")

    def down(self) -> Injection:
        """dockerd died and left its socket behind: the socket file is there, nothing listens."""
        stale = self.sockets / "stale.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(str(stale))
        return Injection({**self.settings(), "docker_host": f"unix://{stale}"}, code=75)

    def _services(self) -> list[tuple[str, str]]:
        proc = self.daemon.cli("service", "ls", "--format", "{{.ID}} {{.Name}}")
        rows = (line.partition(" ") for line in proc.stdout.splitlines() if line.strip())
        return [(service_id, name) for service_id, _, name in rows]

    def view(self, jobs: Sequence[StoreJob]) -> dict[str, list[str]]:
        """``docker service ls``: services ``cops-<id>`` (their ids as it shows them: 12 characters)."""
        wanted = {f"cops-{j.id}": j.id for j in jobs}
        out: dict[str, list[str]] = {}
        for service_id, name in self._services():
            if name in wanted:
                out.setdefault(wanted[name], []).append(service_id)
        return out

    def native(self, job: StoreJob) -> str:
        return (job.native_id or "")[:12]

    def cleanup(self, jobs: Sequence[StoreJob]) -> None:
        ids = [i for natives in self.view(jobs).values() for i in natives]
        for start in range(0, len(ids), 100):
            self.daemon.cli("service", "rm", *ids[start : start + 100], check=False)

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.sockets, ignore_errors=True)


def run_cli(
    argv: list[str], home: Path, env: dict[str, str], *, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "COPS_GRID_HOME": str(home), "COLUMNS": "200", **env},
    )  # fmt: skip
