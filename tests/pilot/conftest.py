"""Fixtures for the pilot wrapper: a DUCC-like busybox image in a squashfs CVMFS stand-in, an
unprivileged user, udocker reachable by that user, and a runner that starts the real wrapper
(``python3 worker/cops_pilot.py``) inside private namespaces built by ``nsexec.py``."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from computeops_grid import worker

HERE = Path(__file__).resolve().parent
NSEXEC = HERE / "nsexec.py"
PYTHON = "/usr/bin/python3"  # the system interpreter: reachable by the unprivileged user too
USER = "copsuser"
CVMFS = Path("/cvmfs/unpacked.cern.ch")
IMAGE = "docker://busybox:1.35"
IMAGE_PATH = "registry.hub.docker.com/library/busybox:1.35"
IMAGE_BARE = "docker://busybox:bare"  # like most DUCC images: no /srv, no /cvmfs mount points
IMAGE_BARE_PATH = "registry.hub.docker.com/library/busybox:bare"
APPLETS = ("sh", "true", "echo", "cat", "id", "env", "pwd", "ls", "sleep", "kill", "touch", "test", "exit")


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the pilot tests need root: loop mounts, namespaces and a second user")


def make_rootfs(root: Path, *, mountpoints: bool = True) -> Path:
    """A busybox-static rootfs with the directories DUCC adds to every flat image, plus the
    wrapper's mount points /srv and /cvmfs unless ``mountpoints`` is false."""
    subs = ["bin", "dev", "proc", "sys", "tmp", "etc", "home", "root", "var/tmp"]
    for sub in [*subs, *(("srv", "cvmfs") if mountpoints else ())]:
        (root / sub).mkdir(parents=True, exist_ok=True)
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox-static is missing: install the packages of etc/deps/apt-pilot.txt")
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "etc" / "image-marker").write_text("cops-test-image\n")
    (root / "tmp").chmod(0o1777)
    return root


def make_repository(repo: Path) -> Path:
    """An unpacked.cern.ch-style tree: a relative symlink into ``.flat/<hh>/<hex>``."""
    for path, seed, mountpoints in ((IMAGE_PATH, b"", True), (IMAGE_BARE_PATH, b"-bare", False)):
        digest = hashlib.sha256(b"cops-pilot-test-busybox" + seed).hexdigest()
        make_rootfs(repo / ".flat" / digest[:2] / digest, mountpoints=mountpoints)
        link = repo / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../..") / ".flat" / digest[:2] / digest)
    return repo


@dataclass
class Node:
    """What the tests need to start the wrapper on a simulated worker node."""

    squashfs: Path
    rootfs: Path  # a plain, world-readable copy of the image (rootfs-path images)
    base: Path  # world-readable scratch area for workdirs
    extra_path: Path  # holds a udocker launcher usable by every user

    def workdir(self, owner: str = "root") -> Path:
        path = Path(tempfile.mkdtemp(prefix="wd-", dir=self.base))
        path.chmod(0o755)
        if owner != "root":
            entry = pwd.getpwnam(owner)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return path


@pytest.fixture(scope="session")
def unprivileged_user() -> str:
    _need_root()
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", USER], check=True)
    return USER


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory, unprivileged_user: str) -> Iterator[Node]:
    """Build the test image once, its squashfs, and the CVMFS mount point (empty on the host)."""
    base = Path(tempfile.mkdtemp(prefix="cops-pilot-tests-"))
    base.chmod(0o755)
    repo = make_repository(base / "repo")
    squashfs = base / "unpacked.squashfs"
    subprocess.run(
        ["mksquashfs", str(repo), str(squashfs), "-noappend", "-quiet", "-all-root"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    CVMFS.mkdir(parents=True, exist_ok=True)  # only the empty mount point; mounts stay private
    extra = base / "bin"
    extra.mkdir()
    _udocker_launcher(extra)
    rootfs = make_rootfs(base / "rootfs")
    yield Node(squashfs=squashfs, rootfs=rootfs, base=base, extra_path=extra)
    shutil.rmtree(base, ignore_errors=True)


def _udocker_launcher(bindir: Path) -> None:
    """udocker is a pip package in root's interpreter; copy it where the unprivileged user can run it."""
    try:
        import udocker  # type: ignore[import-untyped]
    except ImportError:
        return
    package = Path(udocker.__file__).parent
    shutil.copytree(
        package, bindir.parent / "pylib" / "udocker", ignore=shutil.ignore_patterns("__pycache__")
    )
    launcher = bindir / "udocker"
    launcher.write_text(
        f"#!{PYTHON}\nimport sys\nsys.path.insert(0, {str(bindir.parent / 'pylib')!r})\n"
        "from udocker.maincmd import main\nsys.exit(main())\n"
    )
    launcher.chmod(0o755)
    for path in (bindir.parent / "pylib").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


@dataclass
class PilotResult:
    code: int
    stdout: str
    stderr: str
    workdir: Path
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class PilotRunner:
    node: Node
    caches: dict[str, Path] = field(default_factory=dict)

    def cache_dir(self, user: str) -> Path:
        if user not in self.caches:
            path = self.node.base / f"cache-{user}"
            path.mkdir(mode=0o700)
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
            self.caches[user] = path
        return self.caches[user]

    def command(
        self,
        args: Sequence[str],
        *,
        user: str = "root",
        cvmfs: bool = True,
        hide_cvmfs: bool = False,
        no_userns: bool = False,
        readonly: Sequence[str] = (),
        workdir: Path | None = None,
        env: dict[str, str] | None = None,
        path_prefix: Sequence[str] = (),
        report: bool = True,
    ) -> tuple[list[str], dict[str, str], Path]:
        """argv and environment that start the wrapper on the simulated node, and its workdir."""
        workdir = workdir or self.node.workdir(user)
        home = pwd.getpwnam(user).pw_dir
        ns = ["unshare", "--mount", "--propagation", "private", "--", PYTHON, str(NSEXEC)]
        if cvmfs:
            ns += ["--squashfs", str(self.node.squashfs), "--mountpoint", str(CVMFS)]
        if hide_cvmfs:
            ns.append("--hide-cvmfs")
        for path in readonly:
            ns += ["--readonly", path]
        if user != "root":
            ns += ["--user", user]
        if no_userns:
            ns.append("--no-userns")
        path = ":".join(
            [*path_prefix, str(self.node.extra_path), "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"]
        )
        full_env = {
            "PATH": path,
            "HOME": home,
            "USER": user,
            "LOGNAME": user,
            "COPS_PILOT_CACHE_DIR": str(self.cache_dir(user)),
            "COPS_PILOT_CONFIG": os.devnull,
        }
        full_env.update(env or {})
        pilot = [PYTHON, str(worker.pilot()), "--workdir", str(workdir)]
        if report:
            pilot += ["--report", "report.json"]
        return [*ns, "--", *pilot, *args], full_env, workdir

    def __call__(self, args: Sequence[str], *, timeout: float = 120, **options: object) -> PilotResult:
        argv, env, workdir = self.command(args, **options)  # type: ignore[arg-type]
        proc = subprocess.run(argv, env=env, check=False, capture_output=True, text=True, timeout=timeout)
        result = PilotResult(proc.returncode, proc.stdout, proc.stderr, workdir)
        report_file = workdir / "report.json"
        if report_file.exists():
            result.report = json.loads(report_file.read_text())
        return result


@pytest.fixture(scope="session")
def run_pilot(node: Node) -> PilotRunner:
    return PilotRunner(node)
