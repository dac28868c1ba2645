"""Every workload runs the real kernel and its result is checked against an independent checksum."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from computeops_grid.bench.image import BenchImage, best_level, cpu_flags, file_content, files_sum
from computeops_grid.bench.workloads import (
    WORKLOADS,
    Paths,
    Scale,
    Workload,
    WorkloadError,
    by_name,
    lcg_jump,
    parse_result,
    procs_sum,
    seqio_sum,
    simd_sum,
    triad_sum,
)


def _lcg_naive(x: int, n: int) -> int:
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
    return x


def test_lcg_jump_matches_step_by_step() -> None:
    for x, n in ((1, 0), (1, 1), (1, 1000), (12345, 777)):
        assert lcg_jump(x, n) == _lcg_naive(x, n)


def test_closed_forms_match_direct_computation() -> None:
    c = [0] * 10
    for _ in range(7):
        c = [(3 * c[i] + ((i * 2654435761) % 2**32) * (i ^ 0x5BD1E995)) % 2**32 for i in range(10)]
    assert simd_sum(10, 7) == sum(c)
    b = [float(i % 1000) for i in range(2500)]
    for _ in range(4):
        b = [b[i] + 3 * (i % 7) for i in range(2500)]
    assert triad_sum(2500, 4) == int(sum(b))
    words = 2 * 131072
    assert seqio_sum(2) == sum(j * 0x9E3779B97F4A7C15 for j in range(words)) % 2**64
    assert procs_sum(3, 50) == sum(_lcg_naive(p + 1, 50) for p in range(3)) % 2**64


@pytest.mark.parametrize("workload", [w for w in WORKLOADS if not w.needs_gpu], ids=lambda w: w.name)
def test_workload_result_is_verified_on_bare_metal(
    workload: Workload, bench_image: BenchImage, scratch: Path, tiny: Scale
) -> None:
    wl = workload  # the GPU workload: tests/bench/test_gpu.py
    argv = wl.argv(Paths(root=str(bench_image.rootfs), scratch=str(scratch)), tiny)
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    seconds = parse_result(wl, proc.stdout, wl.expected(tiny, bench_image.files_sum))
    if wl.internal:
        assert seconds is not None
        assert seconds >= 0
    assert list(scratch.iterdir()) == []  # seq-io cleans up after itself


def test_wrong_checksum_is_an_error(bench_image: BenchImage, scratch: Path, tiny: Scale) -> None:
    wl = by_name(["cpu-scalar"])[0]
    argv = wl.argv(Paths(str(bench_image.rootfs), str(scratch)), tiny)
    argv[-1] = str(tiny.scalar_iters - 1)  # the kernel computes something else
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    with pytest.raises(WorkloadError, match="checksum"):
        parse_result(wl, out, wl.expected(tiny, bench_image.files_sum))
    with pytest.raises(WorkloadError, match="no result line"):
        parse_result(wl, "Segmentation fault\n", 1)


def test_unknown_workload_names_the_known_ones() -> None:
    with pytest.raises(WorkloadError) as err:
        by_name(["cpu-scalar", "fft"])
    assert "fft" in err.value.message
    assert err.value.hint
    assert "seq-io" in err.value.hint


def test_image_files_and_kernels(bench_image: BenchImage) -> None:
    root = bench_image.rootfs
    assert (root / "bench/files/d03/f042.py").read_bytes() == file_content(3, 42)
    assert bench_image.files_sum == files_sum()
    assert bench_image.best_level == best_level(cpu_flags())
    flags = subprocess.run(
        [str(root / "bench/kernel-best"), "cpuflags"], capture_output=True, text=True, check=True
    ).stdout
    assert flags.startswith("cpuid")
    assert "proc flags" in flags


def test_best_level_from_flags() -> None:
    v2 = {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}
    v3 = v2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "xsave"}
    assert best_level(set()) == "x86-64"
    assert best_level(v2) == "x86-64-v2"
    assert best_level(v3) == "x86-64-v3"
    assert best_level(v3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}) == "x86-64-v4"
    assert best_level(v3 - {"sse4_2"} | {"avx512f"}) == "x86-64"  # a level needs all below it
    assert cpu_flags("processor: 0\nflags\t\t: fpu sse avx\n") == {"fpu", "sse", "avx"}
