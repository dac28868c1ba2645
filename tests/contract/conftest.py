"""The backends the contract suite runs over: every one that can run on this machine.

Each target configures ``$COPS_GRID_HOME`` for one backend (its session service comes from
tests/conftest.py), starts what runs its jobs where the backend has no scheduler of its
own (DiracX: a pilot), and looks at jobs with the backend's **own** tools (:mod:`probes`),
never through cops-grid: ``squeue``/``sacct``, the A-REX REST interface, ``docker``, the
DiracX client, the process table. A test id names the backend: ``test_x[slurm]``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from computeops_grid.jobs.record import JobRecord
from computeops_grid.logic import follow
from computeops_grid.logic.session import Session
from tests.conftest import ROOT
from tests.contract import probes

TARGETS = ["local", "slurm", "arc-rest", "arc-cli", "diracx", "swarm", "kubernetes"]
NO_KUBE_API = (
    "needs a Kubernetes API server (kube-apiserver with a kubelet) for batch/v1 Jobs: none is "
    "packaged for the registries reachable here, and podman kube play runs pod YAML only"
)


@dataclass
class Target:
    """One backend under contract: its name in the store and how to see its jobs natively."""

    name: str  # the test id: local, slurm, arc-rest, arc-cli, diracx, swarm, kubernetes
    backend: str  # the backend type the jobs are submitted to
    probe: probes.Probe | None  # the backend's own view of a job (None: no live backend here)
    start: Callable[[Sequence[JobRecord]], None] = lambda jobs: None  # a pilot, where one is needed
    confirm_wait: float = 10.0  # what `cops-grid cancel --confirm-wait` gets in the tests
    poll: float = 0.3  # seconds between looks at a job (the shortest the backend takes well)
    live: bool = True  # False: the backend cannot be driven here (see `skip`)
    skip: str = ""

    def needs_live(self) -> None:
        if not self.live:
            pytest.skip(f"{self.name}: {self.skip}")


@dataclass
class DiracXSite:
    """The site side of DiracX jobs: the pilot-side helper, one process per start, stopped at the end."""

    url: str
    credentials: Path
    workdir: Path
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, jobs: Sequence[JobRecord]) -> None:
        ids = [str(j.native_id) for j in jobs]
        argv = [sys.executable, "-m", "tests.contract.diracx_site", self.url, str(self.credentials)]
        self.procs.append(
            subprocess.Popen(
                [*argv, str(self.workdir), *ids], cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL
            )
        )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _configure(home: Path, name: str, settings: dict[str, Any]) -> None:
    config = home / "config.yaml"
    data = yaml.safe_load(config.read_text()) or {}
    data.setdefault("backends", {})[name] = settings
    data["default_backend"] = name
    config.write_text(yaml.safe_dump(data))


def _local(request: pytest.FixtureRequest, home: Path) -> Target:
    _configure(home, "local", {"max_parallel": 4})
    return Target("local", "local", probes.LocalProbe(home / "jobs" / "local"))


def _slurm(request: pytest.FixtureRequest, home: Path) -> Target:
    cluster = request.getfixturevalue("slurm_cluster")
    _configure(home, "slurm", request.getfixturevalue("slurm_settings"))
    return Target("slurm", "slurm", probes.SlurmProbe(cluster))


def _arc(request: pytest.FixtureRequest, home: Path, transport: str) -> Target:
    if transport == "cli" and not all(map(shutil.which, ("arcsub", "arcstat", "arckill"))):
        pytest.skip("arc-cli: the ARC client tools (arcsub, arcstat, arckill) are not installed")
    settings = {**request.getfixturevalue("arc_settings"), "transport": transport}
    _configure(home, "arc", settings)
    probe = probes.ArcProbe(settings["ce"], Path(settings["proxy"]), settings["ca_dir"])
    # A-REX goes through its job loop and Slurm's scancel: a kill takes 5-15 s. Over REST the
    # cancel waits that long for the CE to say KILLED; over the tools it does not wait at all
    # (the path of a backend too slow to confirm: the job stays as it is until `status`).
    # Polling A-REX faster than every 2 s only takes CPU from it (arcstat alone takes ~1 s).
    wait = 60.0 if transport == "rest" else 0.0
    return Target(f"arc-{transport}", "arc", probe, confirm_wait=wait, poll=2.0)


def _diracx(request: pytest.FixtureRequest, home: Path) -> Target:
    server = request.getfixturevalue("diracx_server")
    alice: Path = request.getfixturevalue("alice")
    image_root: Path = request.getfixturevalue("image_root")
    _configure(home, "diracx", {"url": server.url, "credentials": str(alice), "image_root": str(image_root)})
    site = DiracXSite(server.url, alice, home / "diracx-site", {**os.environ, "PYTHONPATH": str(ROOT)})
    request.addfinalizer(site.stop)
    probe = probes.DiracXProbe(server.url, alice)
    request.addfinalizer(probe.close)
    return Target("diracx", "diracx", probe, start=site.start)


def _swarm(request: pytest.FixtureRequest, home: Path) -> Target:
    daemon = request.getfixturevalue("swarm_daemon")
    # sh as PID 1 ignores SIGTERM: SIGKILL after 1 s instead of the default 10
    _configure(home, "swarm", {"docker_host": daemon.host, "stop_grace": 1})
    probe = probes.SwarmProbe(daemon.host)
    request.addfinalizer(probe.remove_all)
    return Target("swarm", "swarm", probe)


def _kubernetes(request: pytest.FixtureRequest, home: Path) -> Target:
    _configure(home, "kubernetes", {"kubeconfig": str(home / "no-kubeconfig"), "cvmfs": "none"})
    return Target("kubernetes", "kubernetes", None, live=False, skip=NO_KUBE_API)


MAKERS: dict[str, Callable[[pytest.FixtureRequest, Path], Target]] = {
    "local": _local,
    "slurm": _slurm,
    "arc-rest": lambda request, home: _arc(request, home, "rest"),
    "arc-cli": lambda request, home: _arc(request, home, "cli"),
    "diracx": _diracx,
    "swarm": _swarm,
    "kubernetes": _kubernetes,
}


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, cops_home: Path) -> Iterator[Target]:
    """``cops_home`` configured for one backend (its default), with its native probe.

    Afterwards, jobs a failed test left active are cancelled (best effort, before the
    DiracX pilot stops, so that its heartbeat still stops their payloads)."""
    made = MAKERS[request.param](request, cops_home)
    yield made
    with contextlib.suppress(Exception), Session.open() as session:
        left = session.store.ids(states=follow.ACTIVE)
        if left and made.live:
            follow.cancel(session, left, confirm_timeout=5)
