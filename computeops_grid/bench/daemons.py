"""Private container daemons for benchmarks and tests: a dockerd (and one-node swarm).

Nothing here touches the host's networking or the system dockerd: the daemon gets its
own data root, exec root and socket under one directory, no iptables rules and no
bridge (``--bridge=none``; containers share the loopback-only default network).
Recipe and quirks: ``shared/notes/engines-and-orchestrators.md``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from computeops_grid.errors import BackendUnavailable

log = logging.getLogger(__name__)

# Debian's client matches the daemon; /usr/local/bin/docker may be a newer CLI first on PATH.
DOCKER_CLI_CANDIDATES = ("/usr/bin/docker", "docker")
MAX_EXEC_ROOT = 60  # containerd's socket path must fit the 108-byte unix-socket limit


def free_port(kind: int = socket.SOCK_STREAM, low: int = 20000, high: int = 49151) -> int:
    """A port free on loopback in [low, high] (swarm's data-path port must be below 49152)."""
    for _ in range(200):
        port = random.randint(low, high)  # noqa: S311 (not security relevant)
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise BackendUnavailable(f"no free port between {low} and {high} on 127.0.0.1")


def docker_cli() -> str | None:
    """The docker client to drive by argv (Debian's first), or None when there is none."""
    for cand in DOCKER_CLI_CANDIDATES:
        found = shutil.which(cand)
        if found:
            return found
    return None


@dataclass
class PrivateDockerd:
    """A dockerd fully private to ``root`` (a short directory), started without systemd."""

    root: Path
    proc: subprocess.Popen[bytes] | None = None
    swarm: bool = False
    env: dict[str, str] = field(default_factory=dict)

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def start(self, *, timeout: float = 60.0) -> PrivateDockerd:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise BackendUnavailable(
                "dockerd not found", backend="docker", hint="install Debian's docker.io package"
            )
        exec_root = self.root / "x"
        if len(str(exec_root)) > MAX_EXEC_ROOT:
            raise BackendUnavailable(f"exec root {exec_root} is too long for containerd's socket path")
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [
            dockerd,
            f"--data-root={self.root / 'data'}",
            f"--exec-root={exec_root}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            f"--host={self.host}",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--storage-driver=overlay2",
        ]
        logf = (self.root / "dockerd.log").open("ab")
        self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        self.env = {"DOCKER_HOST": self.host}
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            if self.cli("version", check=False).returncode == 0:
                return
            time.sleep(0.1)
        tail = (self.root / "dockerd.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise BackendUnavailable(f"private dockerd did not become ready in {timeout:.0f}s:\n{tail}")

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cli = docker_cli()
        if cli is None:
            raise BackendUnavailable("docker client not found", hint="install Debian's docker.io package")
        env = {**os.environ, "DOCKER_HOST": self.host}
        proc = subprocess.run(
            [cli, *args], check=False, env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise BackendUnavailable(f"docker {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def init_swarm(self) -> None:
        """Make this daemon a one-node swarm manager on loopback, on free ports.

        The default ports (2377 management, 4789 data path) would collide with any other
        swarm on this host, e.g. a second test session.
        """
        port = free_port()
        self.cli(
            "swarm", "init", "--advertise-addr", f"127.0.0.1:{port}", "--listen-addr", f"127.0.0.1:{port}",
            "--data-path-port", str(free_port(socket.SOCK_DGRAM)),
        )  # fmt: skip
        self.swarm = True

    def stop(self) -> None:
        """Remove services and containers, leave the swarm, stop dockerd, unmount leftovers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._clean_objects()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        for mnt in (self.root / "x" / "netns" / "default", self.root / "data"):
            if os.path.ismount(mnt):
                subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)

    def _clean_objects(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            if self.swarm:
                services = self.cli("service", "ls", "-q", check=False).stdout.split()
                if services:
                    self.cli("service", "rm", *services, check=False)
                self.cli("swarm", "leave", "--force", check=False)
                self.cli("network", "rm", "docker_gwbridge", check=False)
                self.swarm = False
            containers = self.cli("ps", "-aq", check=False).stdout.split()
            if containers:
                self.cli("rm", "-f", *containers, check=False)
