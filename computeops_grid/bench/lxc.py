"""LXC and LXD for the study: adapters with the pilot wrapper's Runtime interface, and a private LXD.

The wrapper has no LXC or LXD adapter (no grid site launches payloads with them); the study
measures them with these two, which answer the same calls as the wrapper's adapters
(``locate``, ``refuse``, ``build``, ``mode``, ``start_failure``, ``signal_of``), so the
benchmark, the feature matrix and the criteria run them exactly like the others.

- ``lxc``: ``lxc-execute`` with a config file in the launch's private directory: the image
  directory as the root, the binds as ``lxc.mount.entry``, the payload's environment as
  ``lxc.environment`` (never in argv), and a network namespace with loopback only.
- ``lxd``: a daemon the study starts itself (:func:`lxd_for_study`): its own ``LXD_DIR``, a
  ``lxd init --preseed`` with a ``dir`` storage pool and **no network** (no bridge, nothing
  reaches outside), the bench rootfs imported as an image, one container per set of binds
  (started on first use, start time recorded) and each payload run with ``lxc exec``.
  Containers are unprivileged (a user namespace); the host scratch is written through
  ``raw.idmap "both 0 0"`` because this kernel and LXD 5.0 cannot shift a bind
  (``shift=true``: "idmapping abilities are required but aren't supported on system").
  Everything is stopped and removed at the end of the study.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LXD_IMAGE = "cops-bench"
LXD_TIMEOUT = 120.0
PRESEED = """\
config: {}
networks: []
storage_pools:
- name: default
  driver: dir
profiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
"""
# the container's init: the busybox image has none; it only has to keep the container up
HOLD = "lxc.init.cmd = /bin/sleep 2147483647"
_names = itertools.count()


class StudyRuntime:
    """What the study's Adapter calls on a runtime (the wrapper's Runtime interface)."""

    name = ""
    binaries: tuple[str, ...] = ()
    supports_sif = False
    start_error = ""

    def locate(self, path_env: str) -> str | None:
        for binary in self.binaries:
            found = shutil.which(binary, path=path_env)
            if found:
                return found
        return None

    def mode(self, binary: str) -> str:
        return "root" if os.geteuid() == 0 else "unprivileged"

    def refuse(self, launch: Any) -> str | None:
        if launch.image.kind != "dir":
            return "runs unpacked image directories only"
        spaced = [b.src for b in launch.all_binds() if " " in b.src or " " in b.dst]
        return f"bind path with a space: {spaced[0]}" if spaced else None

    def start_failure(self, returncode: int, stderr_tail: str) -> str | None:
        if returncode == 0 or not self.start_error:
            return None
        return next((ln.strip() for ln in stderr_tail.splitlines() if self.start_error in ln), None)

    def signal_of(self, returncode: int, stderr_tail: str) -> int | None:
        return returncode - 128 if 128 < returncode < 128 + 65 else None


class Lxc(StudyRuntime):
    """``lxc-execute`` on the image directory, one throw-away container per payload."""

    name = "lxc"
    binaries = ("lxc-execute",)
    start_error = "lxc-execute: "
    gpu_method = "lxc.mount.entry of each /dev/nvidia* in the container's config file"

    def build(self, launch: Any, binary: str) -> tuple[list[str], dict[str, str]]:
        from computeops_grid.bench.runtimes import load_pilot  # noqa: PLC0415 - no import cycle

        lines = [
            "lxc.uts.name = cops-bench",
            f"lxc.rootfs.path = dir:{launch.image.path}",
            "lxc.net.0.type = empty",  # own network namespace, loopback only
            "lxc.mount.auto = proc:mixed sys:ro cgroup:mixed",
            "lxc.autodev = 1",
            "lxc.apparmor.profile = unconfined",
            f"lxc.init.cwd = {launch.all_binds()[0].dst}",
        ]
        for bind in launch.all_binds():
            mode = "rw" if bind.writable else "ro"
            kind = "dir" if os.path.isdir(bind.src) else "file"
            lines.append(
                f"lxc.mount.entry = {bind.src} {bind.dst.lstrip('/')} none bind,{mode},create={kind} 0 0"
            )
        if launch.gpu:
            for device in load_pilot().gpu_devices():
                lines.append(f"lxc.mount.entry = {device} {device.lstrip('/')} none bind,create=file 0 0")
        lines += [f"lxc.environment = {k}={v}" for k, v in sorted(launch.env.items())]
        private = Path(launch.scratch)
        lxcpath = private / "lxc"
        lxcpath.mkdir(mode=0o700, exist_ok=True)
        name = f"cops-{os.getpid()}-{next(_names)}"
        conf = private / f"{name}.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        argv = [binary, "-P", str(lxcpath), "-n", name, "-f", str(conf), "--", *launch.command]
        return argv, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def works_rootless(self, binary: str, user: str) -> str:
        return lxc_rootless(binary, user)


class Lxd(StudyRuntime):
    """``lxc exec`` into a container of the study's private LXD, one container per set of binds."""

    name = "lxd"
    binaries = ("lxc",)
    start_error = "Error: "

    def __init__(self) -> None:
        self.containers: dict[str, str] = {}
        self.starts: list[float] = []  # seconds from `lxc init` to a running container

    def mode(self, binary: str) -> str:
        return "daemon (lxd, root), unprivileged container"

    def build(self, launch: Any, binary: str) -> tuple[list[str], dict[str, str]]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if "LXD_DIR" in os.environ:
            env["LXD_DIR"] = os.environ["LXD_DIR"]
        name = self._container(launch, binary, env)
        argv = [binary, "exec", "-T", name, "--cwd", launch.all_binds()[0].dst]
        for key, value in sorted(launch.env.items()):  # the bench's PATH and HOME only
            argv += ["--env", f"{key}={value}"]
        return [*argv, "--", *launch.command], env

    def _container(self, launch: Any, binary: str, env: dict[str, str]) -> str:
        from computeops_grid.bench.runtimes import load_pilot  # noqa: PLC0415 - no import cycle

        binds = [(b.src, b.dst, b.writable) for b in launch.all_binds()]
        devices = load_pilot().gpu_devices() if launch.gpu else []
        key = hashlib.sha256(repr((binds, devices)).encode()).hexdigest()[:12]
        if key in self.containers:
            return self.containers[key]
        name = f"cops-{key}"
        start = time.monotonic()
        _lxc(binary, env, "init", LXD_IMAGE, name, "-c", f"raw.lxc={HOLD}", "-c", "raw.idmap=both 0 0")
        for i, (src, dst, writable) in enumerate(binds):
            ro = [] if writable else ["readonly=true"]
            _lxc(
                binary,
                env,
                "config",
                "device",
                "add",
                name,
                f"b{i}",
                "disk",
                f"source={src}",
                f"path={dst}",
                *ro,
            )
        for i, device in enumerate(devices):
            _lxc(binary, env, "config", "device", "add", name, f"g{i}", "unix-char", f"source={device}")
        _lxc(binary, env, "start", name)
        self.starts.append(time.monotonic() - start)
        self.containers[key] = name
        return name

    def works_rootless(self, binary: str, user: str) -> str:
        return lxd_rootless(binary, user)

    def note(self) -> str:
        if not self.starts:
            return ""
        ordered = sorted(self.starts)
        return (
            f"lxd: a container costs {ordered[len(ordered) // 2]:.2f} s from `lxc init` to running "
            f"(median of {len(ordered)}: init, binds as disk devices, start); the study starts one per "
            "set of binds and "
            "runs each payload with `lxc exec`, so the startup row is the exec into a running container"
        )


def _lxc(binary: str, env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [binary, *args], env=env, capture_output=True, text=True, timeout=LXD_TIMEOUT, check=False
    )
    if proc.returncode != 0:
        raise OSError(f"lxc {args[0]} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")


STUDY_RUNTIMES: dict[str, type[StudyRuntime]] = {"lxc": Lxc, "lxd": Lxd}

# ----------------------------------------------------------------------------- the private LXD


def image_tarball(rootfs: Path, dest: Path) -> Path:
    """A unified LXD image tarball (metadata.yaml + rootfs/) of the bench rootfs."""
    meta = f"architecture: x86_64\ncreation_date: {int(time.time())}\nproperties:\n  os: busybox\n"
    meta += "  description: cops-grid bench image\n"
    path = dest / "image.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("metadata.yaml")
        data = meta.encode()
        info.size = len(data)

        tar.addfile(info, io.BytesIO(data))
        tar.add(str(rootfs), arcname="rootfs")
    return path


@contextlib.contextmanager
def lxd_for_study(wanted: bool, rootfs: Path) -> Iterator[str]:
    """Start a private LXD (no network), import the bench image, yield a note; stop and remove all after."""
    lxd, client = shutil.which("lxd", path=os.environ.get("PATH", "") + ":/usr/sbin"), shutil.which("lxc")
    if not wanted or lxd is None or client is None or os.geteuid() != 0:
        yield ""
        return
    root = Path(tempfile.mkdtemp(prefix="cl-", dir="/tmp"))  # short: the unix socket path limit
    root.chmod(0o711)
    env = {**os.environ, "LXD_DIR": str(root)}
    before = os.environ.get("LXD_DIR")
    proc: subprocess.Popen[bytes] | None = None
    try:
        try:
            proc, note = _start_lxd(lxd, client, env, root, rootfs)
            os.environ["LXD_DIR"] = str(root)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("private LXD did not start: %s", exc)
            note = f"lxd: the study's private LXD did not start: {str(exc)[:300]}"
        yield note
    finally:
        if before is None:
            os.environ.pop("LXD_DIR", None)
        else:
            os.environ["LXD_DIR"] = before
        _stop_lxd(lxd, client, env, proc, root)


def _start_lxd(
    lxd: str, client: str, env: dict[str, str], root: Path, rootfs: Path
) -> tuple[subprocess.Popen[bytes], str]:
    started = time.monotonic()
    with (root / "daemon.log").open("ab") as log_file:
        proc = subprocess.Popen(
            [lxd, "--logfile", str(root / "lxd.log")],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    steps = [
        ([lxd, "waitready", "--timeout", "60"], None),
        ([lxd, "init", "--preseed"], PRESEED),
        ([client, "image", "import", str(image_tarball(rootfs, root)), "--alias", LXD_IMAGE], None),
    ]
    times = []
    for argv, stdin in steps:
        t0 = time.monotonic()
        done = subprocess.run(
            argv, env=env, input=stdin, capture_output=True, text=True, timeout=LXD_TIMEOUT, check=False
        )
        if done.returncode != 0:
            proc.kill()
            proc.wait(timeout=10)
            raise OSError(f"{' '.join(argv[:3])}: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
        times.append(time.monotonic() - t0)
    (root / "image.tar").unlink()
    total = time.monotonic() - started
    return proc, (
        f"lxd: the study started its own LXD daemon (LXD_DIR={root}) in {total:.1f} s (daemon ready "
        f"{times[0]:.1f} s, `lxd init --preseed` with a dir pool and no network {times[1]:.1f} s, bench "
        f"image import {times[2]:.1f} s), then stopped it and removed its containers, image and directory"
    )


def _stop_lxd(
    lxd: str, client: str, env: dict[str, str], proc: subprocess.Popen[bytes] | None, root: Path
) -> None:
    def run(*argv: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            return subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=LXD_TIMEOUT, check=False
            ).stdout
        return ""

    if proc is not None and proc.poll() is None:
        for name in run(client, "list", "--format", "csv", "-c", "n").split():
            run(client, "delete", "--force", name)
        run(client, "image", "delete", LXD_IMAGE)
        run(lxd, "shutdown", "--timeout", "30")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for target in reversed([m for m in mounts if m.startswith(str(root) + "/")]):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


def _as_user(user: str, argv: list[str], env: dict[str, str], *, payload: bool = True) -> str:
    """Run ``argv`` as ``user`` (setpriv, no capabilities); the cell says what happened."""
    try:
        import pwd  # noqa: PLC0415

        entry = pwd.getpwnam(user)
    except KeyError:
        return f"not measured: no user {user!r} on this machine"
    drop = [f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", "--inh-caps=-all"]
    try:
        proc = subprocess.run(
            ["setpriv", *drop, "--", *argv], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"not measured: {exc}"
    if proc.returncode == 0 and not payload:
        return f"yes (as {user}: the client reached the daemon)"
    if proc.returncode == 0 and proc.stdout.strip().isdigit():
        return f"yes (as {user}, uid {entry.pw_uid} outside, {proc.stdout.strip()} inside)"
    why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:160]
    return f"no (as {user}, exit {proc.returncode}: {why})"


def lxc_rootless(binary: str, user: str) -> str:
    """``lxc-execute`` as an unprivileged user on a world-readable busybox root, no set-up."""
    with tempfile.TemporaryDirectory(prefix="cops-lxc-") as tmp:
        Path(tmp).chmod(0o755)
        conf = Path(tmp) / "c.conf"
        conf.write_text("lxc.rootfs.path = dir:/\nlxc.net.0.type = empty\n")
        conf.chmod(0o644)
        argv = [binary, "-P", tmp, "-n", "rootless", "-f", str(conf), "--", "/usr/bin/id", "-u"]
        return _as_user(user, argv, {"PATH": "/usr/bin:/bin", "HOME": tmp})


def lxd_rootless(binary: str, user: str) -> str:
    """The LXD client as an unprivileged user against the study's daemon."""
    with tempfile.TemporaryDirectory(prefix="cops-lxd-") as home:
        Path(home).chmod(0o777)
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "LXD_DIR": os.environ.get("LXD_DIR", "/var/lib/lxd")}
        return _as_user(user, [binary, "list", "--format", "csv"], env, payload=False)
