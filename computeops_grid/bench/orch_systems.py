"""The orchestrators ``cops-grid bench orchestrators`` compares, found out on this machine.

Each one is a cops-grid backend driven through the same interface users get. A system
that cannot run here gets a row saying why, found by probing (binary on PATH, package
installable from the configured apt sources, API reachable), never by fixed prose.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from computeops_grid.backends.base import Backend, BackendContext
from computeops_grid.backends.kubernetes.backend import KubernetesBackend, KubernetesSettings
from computeops_grid.backends.local.backend import LocalBackend, LocalSettings
from computeops_grid.backends.slurm.backend import SlurmBackend, SlurmSettings
from computeops_grid.backends.swarm.backend import SwarmBackend, SwarmSettings
from computeops_grid.bench import daemons as dm
from computeops_grid.bench.daemons import PrivateDockerd
from computeops_grid.bench.results import SystemInfo
from computeops_grid.errors import CopsError

log = logging.getLogger(__name__)
API_SERVERS = ("kube-apiserver", "k3s", "kind", "minikube", "microk8s")
# name -> (binaries that would run it, Debian package that would provide it)
ABSENT_CANDIDATES = {
    "mesos": (("mesos-master", "mesos-agent"), "mesos"),
    "nomad": (("nomad",), "nomad"),
    "rkt": (("rkt",), "rkt"),
    "shifter": (("shifter", "shifterimg"), "shifter"),
}


@dataclass
class System:
    info: SystemInfo
    backend: Backend | None = None
    daemons: str = ""  # what had to run for it, as observed
    root: str = ""  # whether root was needed, as observed
    stops: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        for fn in reversed(self.stops):
            with contextlib.suppress(Exception):
                fn()


def local_system(ctx: BackendContext) -> System:
    backend = LocalBackend(LocalSettings(max_parallel=os.cpu_count() or 1), ctx)
    health = backend.check()
    info = SystemInfo(
        "local", health.reachable, why="" if health.reachable else health.detail, detail=health.detail
    )
    return System(info, backend if health.reachable else None, "none (one detached runner per job)", "no")


def swarm_system(ctx: BackendContext, docker_host: str | None, work: Path) -> System:
    system = System(SystemInfo("swarm", False))
    if docker_host is None:
        if shutil.which("dockerd") is None:
            system.info = SystemInfo("swarm", False, why="dockerd not on PATH (Debian package docker.io)")
            return system
        if os.geteuid() != 0:
            system.info = SystemInfo("swarm", False, why="a private dockerd needs root; pass --docker-host")
            return system
        daemon = PrivateDockerd(work / "dk")
        try:
            daemon.start()
            system.stops.append(daemon.stop)
            daemon.init_swarm()
        except CopsError as exc:
            system.stop()
            system.info = SystemInfo("swarm", False, why=exc.message[:300])
            return system
        docker_host = daemon.host
        system.daemons = "dockerd + containerd (started privately for the benchmark), swarm manager"
    backend = SwarmBackend(SwarmSettings(docker_host=docker_host, stop_grace=2), ctx)
    system.stops.append(backend.close)
    health = backend.check()
    if not health.reachable:
        system.stop()
        system.info = SystemInfo("swarm", False, why=health.detail)
        return system
    version = backend.client().version().get("Version", "")
    system.info = SystemInfo("swarm", True, version=f"Docker {version}", detail=health.detail)
    system.backend = backend
    system.daemons = system.daemons or f"dockerd + containerd at {docker_host}, swarm manager"
    system.root = _socket_owner(docker_host)
    return system


def _socket_owner(host: str) -> str:
    if not host.startswith("unix://"):
        return "remote engine: not observable from here"
    st = os.stat(host[len("unix://") :])
    who = "root" if st.st_uid == 0 else f"uid {st.st_uid}"
    return f"yes: dockerd runs as root; API socket owned by {who}, mode {st.st_mode & 0o777:o}"


def _sinfo(conf: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"SLURM_CONF": conf} if conf else {})}
    return subprocess.run(["sinfo", "-h", "-o", "%T %c"], env=env, capture_output=True, text=True, timeout=30,
                          check=False)  # fmt: skip


def _slurm_answering(
    ctx: BackendContext, conf: str | None, nodes: str, daemons: str, setup: str = ""
) -> System:
    env = {**os.environ, **({"SLURM_CONF": conf} if conf else {})}
    version = subprocess.run(
        ["sinfo", "--version"], env=env, capture_output=True, text=True, check=False
    ).stdout.strip()
    backend = SlurmBackend(SlurmSettings(slurm_conf=conf), ctx)
    detail = f"nodes: {' '.join(nodes.split())}" + (f"; {setup}" if setup else "")
    info = SystemInfo("slurm", True, version=version, detail=detail)
    return System(info, backend, daemons, "yes: slurmd runs as root to start jobs as users")


def slurm_system(ctx: BackendContext, slurm_conf: str | None, cpus: int) -> System:
    """The Slurm that answers (``--slurm-conf``, ``$SLURM_CONF`` or the default config);
    when none does and the daemons are installed, a private single-node one (stopped with
    the system) with ``cpus`` declared CPUs and memory confined by cgroups where possible."""
    if shutil.which("sinfo") is None:
        return System(SystemInfo("slurm", False, why="sinfo not on PATH (Slurm client not installed)"))
    conf = slurm_conf or os.environ.get("SLURM_CONF")
    proc = _sinfo(conf)
    if proc.returncode == 0:
        return _slurm_answering(ctx, conf, proc.stdout, "slurmctld + slurmd + munged (the site's)")
    said = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
    if conf:
        return System(SystemInfo("slurm", False, why=f"the Slurm of {conf} does not answer (sinfo: {said})"))
    missing = dm.missing_slurm_daemons()
    if missing or os.geteuid() != 0:
        cannot = f"{', '.join(missing)} not on PATH" if missing else "slurmd needs root"
        why = f"no Slurm answers (sinfo: {said}) and a private one cannot start: {cannot}; pass --slurm-conf"
        return System(SystemInfo("slurm", False, why=why))
    return private_slurm(ctx, cpus)


def private_slurm(ctx: BackendContext, cpus: int) -> System:
    """Start a private single-node Slurm; its row says how it was configured."""
    problem = dm.memory_cgroup_problem()
    try:
        cluster = dm.start_slurm(cpus=cpus, enforce_memory=not problem)
    except CopsError as exc:
        if problem:
            return System(SystemInfo("slurm", False, why=f"private Slurm did not start: {exc.message[:300]}"))
        log.warning("private Slurm with cgroups did not start (%s); trying without", exc.message[:200])
        problem = f"task/cgroup did not start ({exc.message[:100]})"
        try:
            cluster = dm.start_slurm(cpus=cpus)
        except CopsError as again:
            why = f"private Slurm did not start: {again.message[:300]}"
            return System(SystemInfo("slurm", False, why=why))
    memory = f"--mem NOT enforced: {problem}" if problem else "--mem scheduled and confined by task/cgroup"
    system = _slurm_answering(
        ctx, str(cluster.conf), cluster.run("sinfo", "-h", "-o", "%T %c").stdout,
        "slurmctld + slurmd + munged (started privately for the benchmark)",
        f"private single-node cluster, CPUs={cpus} declared on {os.cpu_count()} cores; {memory}",
    )  # fmt: skip
    system.stops.append(cluster.stop)
    return system


def kubernetes_system(ctx: BackendContext, kubeconfig: str | None) -> System:
    backend = KubernetesBackend(KubernetesSettings(kubeconfig=kubeconfig), ctx)
    health = backend.check()
    if health.reachable:
        return System(
            SystemInfo("kubernetes", True, detail=health.detail), backend, "API server, kubelet", ""
        )
    found = [b for b in API_SERVERS if shutil.which(b)]
    servers = f"on PATH: {', '.join(found)}" if found else f"none of {', '.join(API_SERVERS)} on PATH"
    return System(
        SystemInfo("kubernetes", False, why=f"{health.detail[:200]}; API server binaries {servers}")
    )


def htcondor_ce_system(
    ctx: BackendContext, ce: str | None, ca_file: str | None, image_root: str | None
) -> System:
    """The HTCondor-CE named by ``--htcondor-ce`` (token from WLCG discovery), located and
    authenticated to before it is measured; a why-row when none is named or it does not answer."""
    if not ce:
        return System(SystemInfo("htcondor-ce", False, why="no CE named (--htcondor-ce HOST[:PORT])"))
    try:
        from computeops_grid.backends.htcondor_ce.backend import (  # noqa: PLC0415 - the optional bindings
            HTCondorCEBackend,
            HTCondorCESettings,
            bindings,
        )

        settings = HTCondorCESettings(ce=ce, ca_file=ca_file, image_root=image_root)
        backend = HTCondorCEBackend(settings, ctx)
        health = backend.check()
        version = ""
        if health.reachable:  # the CE's own version, from its schedd's ad (a bonus: never fatal)
            htc, host = bindings(), ce.split(":")[0]
            with contextlib.suppress(Exception):
                ad = htc.Collector(ce if ":" in ce else f"{host}:9619").locate(htc.DaemonType.Schedd, host)
                found = re.search(r"\d+\.\d+\.\d+", str(ad.get("CondorVersion", "")))
                version = f"HTCondor {found.group(0)}" if found else ""
    except (ImportError, CopsError) as exc:
        return System(SystemInfo("htcondor-ce", False, why=str(getattr(exc, "message", exc))[:300]))
    if not health.reachable:
        return System(SystemInfo("htcondor-ce", False, why=health.detail[:300]))
    info = SystemInfo("htcondor-ce", True, version=version, detail=f"{health.detail}; client bindings")
    daemons = f"the CE at {ce} (collector, schedd, JobRouter) and the batch system behind it"
    return System(info, backend, daemons, "not observable from the client (a remote CE)")


def absent_system(name: str) -> System:
    binaries, package = ABSENT_CANDIDATES[name]
    found = [b for b in binaries if shutil.which(b)]
    if found:
        why = f"{', '.join(found)} found, but no {name} driver in cops-grid"
        return System(SystemInfo(name, False, why=why))
    return System(
        SystemInfo(name, False, why=f"{' / '.join(binaries)} not on PATH; {apt_candidate(package)}")
    )


def apt_candidate(package: str) -> str:
    """What the configured apt sources say about installing ``package``."""
    if shutil.which("apt-cache") is None:
        return "no apt-cache to ask"
    proc = subprocess.run(
        ["apt-cache", "policy", package], capture_output=True, text=True, check=False, timeout=60
    )
    for line in proc.stdout.splitlines():
        if line.strip().startswith("Candidate:"):
            candidate = line.split(":", 1)[1].strip()
            if candidate != "(none)":
                return f"apt could install {package} {candidate}"
            return f"apt: package {package} has no installation candidate"
    return f"apt: no package {package} in the configured sources"
