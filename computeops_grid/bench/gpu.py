"""The GPU workload: find out whether this host has a usable NVIDIA GPU, and ship the check.

:func:`probe_host` looks, it does not assume: device nodes ``/dev/nvidia*``, ``nvidia-smi``
and the driver library ``libcuda.so.1``. Where they are all missing the study keeps a ``gpu``
row whose reason is exactly what was (not) found. Where a driver and devices exist,
:func:`install` compiles ``gpu.c`` (a plain C program: it opens libcuda with dlopen, so no
CUDA toolkit or headers are needed) and copies it into the bench image with its dynamic
loader, libc and the host's driver libraries, so the same check runs bare-metal and inside
every runtime that passes the devices through (the pilot adapters' ``--gpu`` binds).
"""

from __future__ import annotations

import glob
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from computeops_grid.bench.workloads import GPU_DIR, GPU_LOADER
from computeops_grid.errors import CopsError

log = logging.getLogger(__name__)

DRIVER = "libcuda.so.1"
# libcuda dlopens the PTX JIT compiler for cuModuleLoadData(PTX), which itself may need the
# versioned libnvidia-gpucomp: ship those too when present
DRIVER_HELPERS = ("libnvidia-ptxjit-compiler.so.1", "libnvidia-gpucomp.so.*")
DRIVER_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/nvidia/lib64", "/usr/lib/wsl/lib")
SETUP_ERROR = "bench/gpu-setup-error"  # in the image: why the check could not be built
LDD_LINE = re.compile(r"^\s*(?:(\S+) => )?(/\S+) \(0x[0-9a-f]+\)$")


class GpuSetupError(CopsError):
    """The GPU check cannot be built although the host has a GPU."""


@dataclass(frozen=True)
class GpuHost:
    """What this host offers for the GPU workload, as found by :func:`probe_host`."""

    devices: tuple[str, ...]  # /dev/nvidia* nodes
    smi: str | None  # path of nvidia-smi
    smi_gpus: tuple[str, ...]  # its `-L` lines, or its error line
    driver: str | None  # path of libcuda.so.1
    setup_error: str = ""  # set when the check could not be built although a GPU is there

    @property
    def available(self) -> bool:
        return bool(self.devices) and self.driver is not None and not self.setup_error

    @property
    def why(self) -> str:
        """Why the GPU workload cannot run here ("" when it can), from the findings."""
        if self.available:
            return ""
        found = [
            f"{len(self.devices)} /dev/nvidia* node(s)" if self.devices else "no /dev/nvidia* device nodes",
            f"nvidia-smi at {self.smi}" if self.smi else "nvidia-smi not found on PATH",
            f"{DRIVER} at {self.driver}" if self.driver else f"no {DRIVER} (NVIDIA driver library)",
        ]
        if self.smi_gpus:
            found.append(f"nvidia-smi -L: {self.smi_gpus[0][:120]}")
        if self.setup_error:
            found.append(f"the GPU check could not be built: {self.setup_error[:300]}")
        return "; ".join(found)

    @property
    def description(self) -> str:
        if not self.available:
            return "none (" + self.why + ")"
        return ", ".join(self.smi_gpus) or f"{len(self.devices)} device node(s), driver {self.driver}"


def probe_host(dev: str = "/dev", path: str | None = None) -> GpuHost:
    """Look for NVIDIA device nodes, nvidia-smi and the driver library on this host."""
    devices = tuple(sorted(glob.glob(f"{dev}/nvidia*")))
    smi = shutil.which("nvidia-smi", path=path)
    lines: tuple[str, ...] = ()
    if smi:
        try:
            proc = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, check=False)
            lines = tuple(ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip())
        except (OSError, subprocess.SubprocessError) as exc:
            lines = (f"failed: {exc}",)
    return GpuHost(devices, smi, lines, find_library(DRIVER))


def find_library(soname: str) -> str | None:
    """``soname`` as the dynamic loader would find it (ldconfig's cache, then usual dirs)."""
    ldconfig = shutil.which("ldconfig", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if ldconfig:
        proc = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, check=False)
        for line in proc.stdout.splitlines():
            name, _, target = line.strip().partition(" => ")
            if name.split(" ")[0] == soname and "x86-64" in name and Path(target).exists():
                return target
    for directory in DRIVER_DIRS:
        if (Path(directory) / soname).exists():
            return str(Path(directory) / soname)
    return None


def dependencies(binary: str) -> dict[str, str]:
    """{soname: path} of what ``binary`` loads, from ldd (the loader itself included)."""
    proc = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    deps = {}
    for line in proc.stdout.splitlines():
        match = LDD_LINE.match(line)
        if match:
            deps[match.group(1) or Path(match.group(2)).name] = match.group(2)
    return deps


def install(rootfs: Path, host: GpuHost) -> None:
    """Compile the check and copy it, its loader and the driver libraries into the image."""
    if host.driver is None:
        raise GpuSetupError(f"cannot build the GPU check: {host.why}")
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise GpuSetupError("no C compiler (gcc) found", hint="install Debian's gcc and libc6-dev")
    target = rootfs / GPU_DIR
    target.mkdir(parents=True, exist_ok=True)
    check = target / "gpu-check"
    with resources.as_file(resources.files("computeops_grid.bench").joinpath("gpu.c")) as src:
        proc = subprocess.run(
            [cc, "-O2", "-o", str(check), str(src), "-ldl"], capture_output=True, text=True, check=False
        )
    if proc.returncode != 0:
        raise GpuSetupError(f"compiling the GPU check failed: {proc.stderr.strip()[-500:]}")
    libs = {**dependencies(str(check)), DRIVER: host.driver, **dependencies(host.driver)}
    for pattern in DRIVER_HELPERS:
        for found in sorted(glob.glob(str(Path(host.driver).parent / pattern))):
            libs.update({Path(found).name: found, **dependencies(found)})
    for soname, path in libs.items():
        name = GPU_LOADER if soname.startswith("ld-linux") else soname
        shutil.copy2(Path(path).resolve(), target / name)
    log.info("GPU check installed in the bench image with %s", ", ".join(sorted(libs)))
