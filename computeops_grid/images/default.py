"""The embedded default image: busybox built offline from Debian's busybox-static.

``python -m computeops_grid.images.default [IMAGE_ROOT]`` lays it out like
``/cvmfs/unpacked.cern.ch``: ``registry.hub.docker.com/library/busybox:latest`` is a
relative symlink to ``.flat/<hh>/<digest>``, the flat root filesystem, so the pilot
wrapper resolves ``docker://busybox:latest`` exactly as it does on CVMFS.

Nobody has to run that by hand: the local backend builds the image before the first job
that names it (:func:`ensure_for_jobs`), so the README's first job works right after
``pip install``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from computeops_grid.config import load_config
from computeops_grid.errors import ConfigError, CopsError, ToolMissing
from computeops_grid.images.errors import ImageError
from computeops_grid.images.reference import parse_ref

BUSYBOX = Path("/bin/busybox")
PUBLIC = Path("registry.hub.docker.com/library/busybox:latest")
NAME = "docker://busybox:latest"
_DIRS = (
    "bin",
    "usr/bin",
    "sbin",
    "etc",
    "tmp",
    "var/tmp",
    "dev",
    "proc",
    "sys",
    "home",
    "root",
    "mnt",
    "srv",  # the pilot wrapper binds the job's scratch here (charliecloud/runc need the mount point)
    "cvmfs",
)
_ETC = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/hosts": "127.0.0.1 localhost\n",
    "etc/resolv.conf": "",
}


def _applets(busybox: Path) -> list[str]:
    listed = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout
    return [a for a in listed.split() if a and "/" not in a and a != "busybox"]


def _build_rootfs(rootfs: Path, busybox: Path) -> None:
    for directory in _DIRS:
        (rootfs / directory).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    (rootfs / "bin" / "busybox").chmod(0o755)
    for applet in _applets(busybox):
        link = rootfs / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (rootfs / "usr/bin/env").symlink_to("/bin/busybox")
    for name, text in _ETC.items():
        (rootfs / name).write_text(text)


def _digest(busybox: Path) -> str:
    config = {
        "architecture": "amd64" if os.uname().machine == "x86_64" else os.uname().machine,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        },
        "busybox_sha256": hashlib.sha256(busybox.read_bytes()).hexdigest(),
        "layout": list(_DIRS),
    }
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def ensure_default_image(image_root: Path, busybox: Path = BUSYBOX) -> Path:
    """Build (once) and return the path of ``docker://busybox:latest`` under ``image_root``."""
    public = image_root / PUBLIC
    if not busybox.is_file():
        raise ToolMissing(
            f"{busybox} not found: the embedded image {NAME} is built from it",
            hint="apt-get install busybox-static",
        )
    digest = _digest(busybox)
    flat = image_root / ".flat" / digest[:2] / digest
    if public.is_dir() and public.resolve() == flat.resolve() and (flat / "bin" / "sh").exists():
        return public
    if not flat.is_dir():
        flat.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=flat.parent))
        _build_rootfs(tmp, busybox)
        tmp.chmod(0o755)
        try:
            os.rename(tmp, flat)
        except OSError:  # built at the same moment by another job: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
            if not flat.is_dir():
                raise
    public.parent.mkdir(parents=True, exist_ok=True)
    link_tmp = public.with_name(f".{public.name}.{os.getpid()}")
    link_tmp.unlink(missing_ok=True)
    link_tmp.symlink_to(os.path.relpath(flat, public.parent))
    os.replace(link_tmp, public)
    meta = image_root / ".metadata" / PUBLIC
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "manifest.json").write_text(json.dumps({"config": {"digest": f"sha256:{digest}"}}) + "\n")
    return public


def names_embedded(image: str) -> bool:
    """Whether a job's ``image:`` is the embedded image, in any spelling of its name
    (``docker://busybox``, ``docker://docker.io/library/busybox:latest``, ...)."""
    if not image.startswith(("docker://", "https://", "http://")):
        return False
    try:
        return parse_ref(image).public_path == str(PUBLIC)
    except ImageError:
        return False


def ensure_for_jobs(images: Iterable[str], image_root: Path) -> None:
    """Build the embedded image under ``image_root`` when a job names it and it is not
    there yet (the first job after ``pip install``); an image that is there is left alone."""
    if not any(names_embedded(image) for image in images) or (image_root / PUBLIC / "bin" / "sh").exists():
        return
    try:
        ensure_default_image(image_root)
    except OSError as exc:
        raise ConfigError(
            f"cannot build the embedded image {NAME} in {image_root}: {exc.strerror or exc}",
            hint=f"set image_root in the configuration to a writable directory, or run "
            f"`{Path(sys.executable).name} -m computeops_grid.images.default DIR` where it is writable",
        ) from None


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else load_config().images
    try:
        path = ensure_default_image(root)
    except CopsError as exc:
        sys.stderr.write(f"Error: {exc.message}\n" + (f"Hint: {exc.hint}\n" if exc.hint else ""))
        return int(exc.exit_code)
    sys.stdout.write(f"{NAME} -> {path} ({path.resolve()})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
