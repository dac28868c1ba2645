"""The benchmark workloads and the independent check of every result.

Each workload is one command run inside the bench image (``image.py``) by the C kernel
(``kernel.c``) or busybox. The kernel prints ``ok MODE seconds=S checksum=C``; this
module recomputes C in Python from the workload's parameters (closed forms, LCG
jump-ahead), so a result is accepted only when the computation really happened.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from computeops_grid.errors import CopsError

MASK64 = (1 << 64) - 1
LCG_A = 6364136223846793005
LCG_C = 1442695040888963407
SEQ_K = 0x9E3779B97F4A7C15
TRIAD_S = 3
FILES_DIRS = 20
FILES_PER_DIR = 100  # 2,000 small files: a Python-import-like storm of opens
RESULT = re.compile(r"^ok (\w+) seconds=([0-9.]+) checksum=(\d+)$", re.MULTILINE)


class WorkloadError(CopsError):
    """A workload ran but its output is missing or its checksum is wrong."""


@dataclass(frozen=True)
class Scale:
    """Problem sizes: ``quick`` keeps the whole study within minutes on 2 cores."""

    scalar_iters: int
    simd_len: int
    simd_reps: int
    triad_len: int
    triad_reps: int
    files_reps: int
    seqio_mib: int
    procs_iters: int
    gpu_threads: int = 1 << 16
    gpu_iters: int = 1 << 16


QUICK = Scale(50_000_000, 4096, 60_000, 2_000_000, 10, 1, 32, 50_000_000)
FULL = Scale(200_000_000, 4096, 300_000, 4_000_000, 40, 3, 256, 200_000_000, 1 << 18, 1 << 18)
GPU_DIR = "bench/gpu"  # in the image: the GPU check, its dynamic loader and libraries (gpu.py)
GPU_LOADER = "ld-linux-x86-64.so.2"


@dataclass(frozen=True)
class Paths:
    """Where the image's files and the scratch directory are, as the payload sees them."""

    root: str  # "" inside a container, the rootfs directory on bare metal
    scratch: str


@dataclass(frozen=True)
class Workload:
    """One measured command. ``internal``: the kernel times itself; else wall time of the launch."""

    name: str
    title: str
    internal: bool
    needs_scratch: bool = False
    needs_gpu: bool = False

    def argv(self, paths: Paths, scale: Scale) -> list[str]:
        return _ARGV[self.name](paths, scale)

    def expected(self, scale: Scale, files_sum: int) -> int | None:
        """The checksum the output must carry (None: the exit status is the check)."""
        return _EXPECTED[self.name](scale, files_sum) if self.name in _EXPECTED else None


def _kernel(paths: Paths, best: bool = False) -> str:
    return f"{paths.root}/bench/kernel-{'best' if best else 'baseline'}"


def gpu_argv(root: str, threads: int, iters: int) -> list[str]:
    """The GPU check, run through the loader shipped next to it (which finds libcuda there too)."""
    libs = f"{root}/{GPU_DIR}"
    return [f"{libs}/{GPU_LOADER}", "--library-path", libs, f"{libs}/gpu-check", str(threads), str(iters)]


_ARGV: dict[str, Callable[[Paths, Scale], list[str]]] = {
    "startup": lambda p, s: ["/bin/true"] if not p.root else [f"{p.root}/bin/true"],
    "cpu-scalar": lambda p, s: [_kernel(p), "scalar", str(s.scalar_iters)],
    "simd-baseline": lambda p, s: [_kernel(p), "simd", str(s.simd_len), str(s.simd_reps)],
    "simd-best": lambda p, s: [_kernel(p, True), "simd", str(s.simd_len), str(s.simd_reps)],
    "mem-triad": lambda p, s: [_kernel(p, True), "triad", str(s.triad_len), str(s.triad_reps), str(TRIAD_S)],
    "small-files": lambda p, s: [
        _kernel(p),
        "files",
        f"{p.root}/bench/files",
        str(FILES_DIRS),
        str(FILES_PER_DIR),
        str(s.files_reps),
    ],
    "seq-io": lambda p, s: [_kernel(p), "seqio", p.scratch, str(s.seqio_mib)],
    "multi-proc": lambda p, s: [_kernel(p), "procs", str(os.cpu_count() or 1), str(s.procs_iters)],
    "gpu": lambda p, s: gpu_argv(p.root, s.gpu_threads, s.gpu_iters),
}

WORKLOADS: tuple[Workload, ...] = (
    Workload("startup", "start-up latency (/bin/true, wall time)", internal=False),
    Workload("cpu-scalar", "CPU scalar (LCG chain)", internal=True),
    Workload("simd-baseline", "vector kernel, x86-64 baseline build", internal=True),
    Workload("simd-best", "vector kernel, host's best x86-64 level", internal=True),
    Workload("mem-triad", "memory bandwidth (STREAM-like triad)", internal=True),
    Workload("small-files", "small-file storm (2,000 opens+reads from the image)", internal=True),
    Workload("seq-io", "sequential write+fsync+read to bound scratch", internal=True, needs_scratch=True),
    Workload("multi-proc", "multi-process scaling (one LCG per core)", internal=True),
    Workload("gpu", "GPU: device nodes seen inside + an LCG kernel (CUDA driver API)", True, needs_gpu=True),
)


def by_name(names: Sequence[str]) -> list[Workload]:
    known = {w.name: w for w in WORKLOADS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise WorkloadError(
            f"unknown workload(s): {', '.join(unknown)}", hint=f"choose from {', '.join(known)}"
        )
    return [known[n] for n in names]


def lcg_jump(x: int, n: int) -> int:
    """The kernel's LCG state after ``n`` steps from ``x``, in O(log n)."""
    mul, add = LCG_A, LCG_C  # the affine map x -> mul*x + add, squared at each bit
    while n:
        if n & 1:
            x = (mul * x + add) & MASK64
        mul, add = (mul * mul) & MASK64, (mul * add + add) & MASK64
        n >>= 1
    return x


def simd_sum(length: int, reps: int) -> int:
    """Sum of c after ``reps`` passes of c = 3c + a*b (uint32), c starting at 0."""
    geometric = ((pow(3, reps, 1 << 33) - 1) >> 1) & 0xFFFFFFFF  # (3^R - 1) / 2 mod 2^32
    total = 0
    for i in range(length):
        a = (i * 2654435761) & 0xFFFFFFFF
        b = (i ^ 0x5BD1E995) & 0xFFFFFFFF
        total += (a * b * geometric) & 0xFFFFFFFF
    return total & MASK64


def _mod_sum(n: int, m: int) -> int:
    """sum(i % m for i in range(n))."""
    full, rest = divmod(n, m)
    return full * m * (m - 1) // 2 + rest * (rest - 1) // 2


def triad_sum(length: int, reps: int, s: int = TRIAD_S) -> int:
    """Sum of the triad result: b0 + reps*s*c with b0 = i%1000, c = i%7 (exact in doubles)."""
    return _mod_sum(length, 1000) + reps * s * _mod_sum(length, 7)


def seqio_sum(mib: int) -> int:
    words = mib * 131072
    return (SEQ_K * (words * (words - 1) // 2)) & MASK64


def procs_sum(nproc: int, iters: int) -> int:
    return sum(lcg_jump(p + 1, iters) for p in range(nproc)) & MASK64


def gpu_sum(threads: int, iters: int) -> int:
    """Sum over threads i of the LCG state after ``iters`` steps from i+1, in closed form.

    The LCG after n steps is the affine map x -> mul*x + offset, so the sum over the
    starts 1..T is mul*T(T+1)/2 + T*offset.
    """
    offset = lcg_jump(0, iters)
    mul = (lcg_jump(1, iters) - offset) & MASK64
    return (mul * (threads * (threads + 1) // 2) + threads * offset) & MASK64


_EXPECTED: dict[str, Callable[[Scale, int], int]] = {
    "cpu-scalar": lambda s, f: lcg_jump(1, s.scalar_iters),
    "simd-baseline": lambda s, f: simd_sum(s.simd_len, s.simd_reps),
    "simd-best": lambda s, f: simd_sum(s.simd_len, s.simd_reps),
    "mem-triad": lambda s, f: triad_sum(s.triad_len, s.triad_reps),
    "small-files": lambda s, f: f * s.files_reps,
    "seq-io": lambda s, f: seqio_sum(s.seqio_mib),
    "multi-proc": lambda s, f: procs_sum(os.cpu_count() or 1, s.procs_iters),
    "gpu": lambda s, f: gpu_sum(s.gpu_threads, s.gpu_iters),
}


def parse_result(workload: Workload, stdout: str, expected: int | None) -> float | None:
    """The kernel's own timing from ``stdout``, after checking its checksum.

    Returns None for wall-timed workloads; raises :class:`WorkloadError` when the result
    line is missing or the checksum differs from the independently computed one.
    """
    if not workload.internal:
        return None
    match = RESULT.search(stdout)
    if match is None:
        raise WorkloadError(f"{workload.name}: no result line in output {stdout[-200:]!r}")
    checksum = int(match.group(3))
    if expected is not None and checksum != expected:
        raise WorkloadError(f"{workload.name}: checksum {checksum} != expected {expected}")
    return float(match.group(2))
