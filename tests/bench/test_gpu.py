"""The GPU workload: the no-GPU path runs here for real; the GPU path needs an NVIDIA GPU.

This machine has no NVIDIA GPU (no /dev/nvidia*, no libcuda.so.1), so the tests that run the
kernel skip here with that reason; they run unchanged on a GPU node. What can be checked
without a GPU is checked for real: the host probe on this machine and on a device directory
that holds a node, the compiled check refusing to run without a device, the PTX kernel
assembled by NVIDIA's own ``ptxas`` where the CUDA toolkit is installed, and the checksum.
"""

from __future__ import annotations

import glob
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from computeops_grid.bench import gpu
from computeops_grid.bench.image import BenchImage
from computeops_grid.bench.runtime_study import Options, run
from computeops_grid.bench.workloads import Paths, Scale, by_name, gpu_sum, parse_result

SOURCE = Path(gpu.__file__).with_name("gpu.c")
HOST = gpu.probe_host()
needs_gpu = pytest.mark.skipif(
    not HOST.available, reason=f"the GPU path cannot run on this machine: {HOST.why}"
)
no_gpu_here = pytest.mark.skipif(HOST.available, reason="this machine has a GPU: the no-GPU path is not it")


def _lcg_naive(x: int, n: int) -> int:
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
    return x


def test_gpu_checksum_closed_form_matches_step_by_step() -> None:
    for threads, iters in ((1, 0), (5, 1), (37, 100), (256, 33)):
        assert gpu_sum(threads, iters) == sum(_lcg_naive(i + 1, iters) for i in range(threads)) % 2**64


@no_gpu_here
def test_no_gpu_reason_is_what_the_probe_found() -> None:
    assert glob.glob("/dev/nvidia*") == []
    assert "no /dev/nvidia* device nodes" in HOST.why
    smi = shutil.which("nvidia-smi")
    assert ("nvidia-smi not found on PATH" in HOST.why) == (smi is None)
    assert HOST.description.startswith("none (no /dev/nvidia*")


def test_probe_reports_device_nodes_it_finds(tmp_path: Path) -> None:
    (tmp_path / "nvidia0").touch()
    (tmp_path / "nvidiactl").touch()
    (tmp_path / "null").touch()
    found = gpu.probe_host(dev=str(tmp_path), path=str(tmp_path))  # an empty PATH: no nvidia-smi
    assert found.devices == (str(tmp_path / "nvidia0"), str(tmp_path / "nvidiactl"))
    assert "2 /dev/nvidia* node(s)" in found.why or found.available
    assert "nvidia-smi not found on PATH" in found.why or found.available
    if found.driver is None:
        assert "no libcuda.so.1" in found.why


def test_compiled_check_refuses_without_a_device_node(tmp_path: Path) -> None:
    if HOST.devices:
        pytest.skip("this machine has /dev/nvidia* nodes")
    binary = tmp_path / "gpu-check"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(binary), str(SOURCE), "-ldl"], check=True)
    proc = subprocess.run([str(binary), "64", "10"], capture_output=True, text=True, check=False)
    assert proc.returncode == 6
    assert "no /dev/nvidia<N> device node visible" in proc.stderr
    assert "ok gpu" not in proc.stdout


def _ptxas() -> str | None:
    found = shutil.which("ptxas")
    return found or next(iter(sorted(glob.glob("/usr/local/cuda*/bin/ptxas"), reverse=True)), None)


@pytest.mark.skipif(_ptxas() is None, reason="no CUDA toolkit (ptxas) on this machine")
def test_ptx_kernel_assembles_for_current_gpus(tmp_path: Path) -> None:
    text = SOURCE.read_text()
    block = re.search(r"static const char PTX\[\] =\n(.*?);\n", text, re.S)
    assert block is not None
    ptx = "".join(
        piece.encode().decode("unicode_escape")
        for piece in re.findall(r'"((?:[^"\\]|\\.)*)"', block.group(1))
    )
    source = tmp_path / "lcg.ptx"
    source.write_text(ptx)
    for arch in ("sm_75", "sm_90"):  # Turing (oldest in CUDA 13) and Hopper
        cubin = tmp_path / f"lcg-{arch}.cubin"
        proc = subprocess.run(
            [str(_ptxas()), f"-arch={arch}", "-o", str(cubin), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert cubin.stat().st_size > 0


@no_gpu_here
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (Debian bubblewrap) absent")
def test_study_without_gpu_keeps_a_gpu_row_saying_why(tmp_path: Path) -> None:
    written = run(
        Options(tmp_path / "r", ["bubblewrap"], repeats=1, quick=True, workloads=["startup", "gpu"])
    )
    md = written.markdown.read_text()
    assert "| gpu | not run | not run |" in md
    assert f"| gpu (workload) | — | {HOST.why} |" in md
    assert f"The GPU workload could not run on this machine ({HOST.why})." in md.split("## Overhead")[0]
    assert {m["workload"] for m in json.loads(written.json.read_text())["measurements"]} == {"startup"}


@needs_gpu
def test_gpu_kernel_result_is_verified_on_bare_metal(
    bench_image: BenchImage, scratch: Path, tiny: Scale
) -> None:
    wl = by_name(["gpu"])[0]
    proc = subprocess.run(
        wl.argv(Paths(str(bench_image.rootfs), str(scratch)), tiny),
        capture_output=True,
        text=True,
        check=True,
    )
    assert re.search(r"^gpu devices=[1-9]\d* name=\S+$", proc.stdout, re.M)
    assert parse_result(wl, proc.stdout, wl.expected(tiny, bench_image.files_sum)) is not None


@needs_gpu
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (Debian bubblewrap) absent")
def test_gpu_kernel_runs_inside_bubblewrap(tmp_path: Path) -> None:
    written = run(Options(tmp_path / "r", ["bubblewrap"], repeats=2, quick=True, workloads=["gpu"]))
    data = json.loads(written.json.read_text())
    assert [m["error"] for m in data["measurements"]] == ["", "", "", ""]
    assert "GPU: the kernel ran inside bubblewrap" in written.markdown.read_text()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (Debian bubblewrap) absent")
def test_shipped_check_finds_device_and_driver_through_its_own_loader(tmp_path: Path) -> None:
    """The packaging of the GPU path, run here with stand-ins for what only a GPU node has.

    Stand-ins (said so): /dev/null bound at /dev/nvidia0 inside bubblewrap plays the device
    node, and libm plays libcuda.so.1 (a real library without the CUDA symbols). What is real:
    the check compiled and copied into an image with its loader and libraries by ``install``,
    started through that loader inside a container, opening the device and dlopening the
    driver from the image; it must get as far as asking libcuda for cuInit.
    """
    rootfs = tmp_path / "rootfs"
    for sub in ("proc", "dev", "tmp"):
        (rootfs / sub).mkdir(parents=True)
    libm = gpu.find_library("libm.so.6")
    assert libm is not None
    gpu.install(rootfs, gpu.GpuHost(("/dev/null",), None, (), libm))
    shipped = sorted(p.name for p in (rootfs / "bench" / "gpu").iterdir())
    assert {"gpu-check", "ld-linux-x86-64.so.2", "libc.so.6", "libcuda.so.1"} <= set(shipped)
    inner = by_name(["gpu"])[0].argv(Paths("", "/srv"), Scale(1, 1, 1, 1, 1, 1, 1, 1, 64, 10))
    bwrap = ["bwrap", "--ro-bind", str(rootfs), "/", "--proc", "/proc", "--dev", "/dev"]
    with_device = [*bwrap, "--dev-bind", "/dev/null", "/dev/nvidia0", "--", *inner]
    proc = subprocess.run(with_device, capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stderr.strip()) == (7, "gpu-check: cuInit missing from libcuda.so.1")
    proc = subprocess.run([*bwrap, "--", *inner], capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stderr.strip()) == (6, "gpu-check: no /dev/nvidia<N> device node visible")
