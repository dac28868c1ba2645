"""``podman kube play``: a real consumer of Kubernetes Pod YAML, private to one directory.

No Kubernetes API server can run on this machine, so tests hand the pod templates of our
Job manifests to podman 4.3 (recipe: shared/notes/engines-and-orchestrators.md): private
``--root``/``--runroot``, a containers.conf selected with ``CONTAINERS_CONF`` (runc,
cgroupfs, file events, ulimits within the hard limits), always ``--network none``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

CONF = """\
[containers]
netns = "host"
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


@dataclass
class PodResult:
    exit_code: int
    state: str
    logs: str
    oom_killed: bool


class PodmanKube:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "containers.conf").write_text(CONF)

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = ["podman", "--root", str(self.root / "root"), "--runroot", str(self.root / "run"), *args]
        env = {**os.environ, "CONTAINERS_CONF": str(self.root / "containers.conf")}
        # cwd: podman 4.3's conmon writes an `oom` marker into its working directory on an OOM kill
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, check=check, timeout=timeout, cwd=self.root
        )

    def import_rootfs(self, rootfs: Path, name: str) -> None:
        archive = self.root / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(str(rootfs.resolve()), arcname=".")
        path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        self.run("import", "--change", f"ENV {path}", str(archive), name)
        archive.unlink()

    def play(self, pod: dict[str, Any], *, timeout: float = 120) -> PodResult:
        """Run one Pod to its end: exit code, state and logs of container ``main``."""
        path = self.root / f"{pod['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(pod))
        container = f"{pod['metadata']['name']}-main"
        try:
            self.run("kube", "play", "--network", "none", str(path), check=False)
            code = self.run("wait", container, timeout=timeout).stdout.strip()
            fmt = "{{.State.Status}} {{.State.OOMKilled}} {{.State.Error}}"
            state, oom, *_ = (self.run("inspect", container, "--format", fmt).stdout + " ").split(" ")
            logs = self.run("logs", container).stdout
            return PodResult(int(code), state, logs, oom == "true")
        finally:
            self.run("kube", "down", str(path), check=False)

    def stop(self) -> None:
        self.run("system", "reset", "--force", check=False)
        overlay = self.root / "root" / "overlay"
        if os.path.ismount(overlay):
            subprocess.run(["umount", "-l", str(overlay)], check=False)


def podman_kube(image_rootfs: Path, name: str) -> PodmanKube:
    if shutil.which("podman") is None or shutil.which("catatonit") is None:
        pytest.skip("podman and catatonit are needed for kube play (etc/deps/apt-orchestrators.txt)")
    kube = PodmanKube(Path(tempfile.mkdtemp(prefix="cops-pk-")))
    kube.import_rootfs(image_rootfs, name)
    return kube
