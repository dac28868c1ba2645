"""The bench image: one unpacked rootfs that bare metal and every runtime run from.

busybox (static) for the shell tools, the C kernel built twice (x86-64 baseline and the
host's best level, both static), a tree of small files for the import storm, and empty
mount points for /scratch and /cvmfs. Everything is world-readable so rootless runs work.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from computeops_grid.bench import gpu
from computeops_grid.bench.workloads import FILES_DIRS, FILES_PER_DIR
from computeops_grid.errors import CopsError

log = logging.getLogger(__name__)

BUSYBOX_APPLETS = ("sh", "true", "false", "echo", "sleep", "cat", "kill", "id", "ls", "mkdir", "head", "env")
MOUNT_POINTS = ("srv", "proc", "dev", "sys", "tmp", "cvmfs", "etc", "root", "home", "run", "var/tmp")
# x86-64 micro-architecture levels by the /proc/cpuinfo flags they add (psABI)
LEVELS = (
    ("x86-64-v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
    ("x86-64-v3", {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "xsave"}),
    ("x86-64-v2", {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}),
)
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f")


class ImageError(CopsError):
    """The bench image cannot be built (no compiler, no static busybox)."""


@dataclass(frozen=True)
class BenchImage:
    rootfs: Path
    best_level: str
    files_sum: int  # byte sum of the small-file tree, for the storm's checksum
    gpu: gpu.GpuHost  # the host's GPU; the image holds the GPU check when it is available


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The host's CPU flags, from the first ``flags`` line of /proc/cpuinfo."""
    text = cpuinfo if cpuinfo is not None else Path("/proc/cpuinfo").read_text()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def best_level(flags: set[str]) -> str:
    """The highest x86-64 level whose flags (and those of every level below) are all present."""
    reached = "x86-64"
    for level, needed in reversed(LEVELS):
        if not needed <= flags:
            break
        reached = level
    return reached


def file_content(d: int, f: int) -> bytes:
    """Deterministic text of one file of the storm (150-1,100 bytes, like small .py files)."""
    line = f"# module d{d:02d}.f{f:03d}\nVALUE_{d}_{f} = {d * 1000 + f}\n".encode()
    return line * (1 + (d * 7 + f) % 24)


def files_sum() -> int:
    return sum(sum(file_content(d, f)) for d in range(FILES_DIRS) for f in range(FILES_PER_DIR))


def compile_kernel(out: Path, march: str) -> None:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise ImageError("no C compiler (gcc) found", hint="install Debian's gcc and libc6-dev")
    source = resources.files("computeops_grid.bench").joinpath("kernel.c")
    with resources.as_file(source) as src:
        argv = [cc, "-O3", "-static", f"-march={march}", "-o", str(out), str(src)]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ImageError(f"compiling the bench kernel for {march} failed: {proc.stderr.strip()[-500:]}")


def _busybox() -> Path:
    for cand in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(cand)
        if path.is_file() and b"statically linked" in _file_type(path):
            return path
    raise ImageError("no static busybox found", hint="install Debian's busybox-static")


def _file_type(path: Path) -> bytes:
    # a dynamically linked ELF has a PT_INTERP segment naming the loader
    data = path.read_bytes()[:4096]
    return b"dynamic" if b"ld-linux" in data else b"statically linked"


def build_image(dest: Path) -> BenchImage:
    """Build (or reuse, keyed by the kernel source and CPU level) the bench rootfs under ``dest``."""
    level = best_level(cpu_flags())
    host_gpu = gpu.probe_host()
    sources = b"".join(
        resources.files("computeops_grid.bench").joinpath(name).read_bytes() for name in ("kernel.c", "gpu.c")
    )
    key = hashlib.sha256(sources + level.encode() + str(host_gpu.driver).encode()).hexdigest()[:16]
    rootfs = dest / f"rootfs-{key}"
    if not (rootfs / ".complete").exists():
        _populate(rootfs, level, host_gpu)
    if (rootfs / gpu.SETUP_ERROR).exists():  # a GPU is there but the check could not be built
        host_gpu = dataclasses.replace(host_gpu, setup_error=(rootfs / gpu.SETUP_ERROR).read_text())
    return BenchImage(rootfs=rootfs, best_level=level, files_sum=files_sum(), gpu=host_gpu)


def _populate(rootfs: Path, level: str, host_gpu: gpu.GpuHost) -> None:
    log.info("building bench image %s (best level %s)", rootfs, level)
    shutil.rmtree(rootfs, ignore_errors=True)
    for name in (*MOUNT_POINTS, "bin", "bench"):
        (rootfs / name).mkdir(parents=True, exist_ok=True)
    shutil.copy2(_busybox(), rootfs / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    compile_kernel(rootfs / "bench" / "kernel-baseline", "x86-64")
    compile_kernel(rootfs / "bench" / "kernel-best", level)
    for d in range(FILES_DIRS):
        sub = rootfs / "bench" / "files" / f"d{d:02d}"
        sub.mkdir(parents=True)
        for f in range(FILES_PER_DIR):
            (sub / f"f{f:03d}.py").write_bytes(file_content(d, f))
    if host_gpu.available:
        try:
            gpu.install(rootfs, host_gpu)
        except gpu.GpuSetupError as exc:
            (rootfs / gpu.SETUP_ERROR).write_text(exc.message)
    for path in (rootfs, *rootfs.rglob("*")):
        if not path.is_symlink():
            os.chmod(path, path.stat().st_mode | 0o755 if path.is_dir() else path.stat().st_mode | 0o444)
    (rootfs / "tmp").chmod(0o1777)
    (rootfs / ".complete").write_text(level + "\n")
