"""The pilot wrapper's added latency against calling the same runtime directly, in one run.

For each runtime that works here: medians of `/bin/true` in a busybox rootfs launched (a) directly
with the argv the wrapper builds (`build_launch`), (b) through `cops-pilot` with a warm probe
cache; wall time and CPU time (user+sys of the process tree, less sensitive to a loaded machine);
plus the cold cost (empty probe cache: probe + run). The `host` row is host mode (`--image host:`)
against running `/bin/true` directly: the wrapper's own cost with no runtime at all.
Goal: (b) - (a) <= 10 ms. The floor is the interpreter's start plus compiling the single-file
wrapper (a script is compiled on every run), printed at the end.

    python3 benchmarks/pilot_overhead.py [--runs 20] [--runtimes host,proot,charliecloud]
        [--baseline OLD_WRAPPER.py]   # e.g. `git show REV:computeops_grid/worker/cops_pilot.py > /tmp/old.py`
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from computeops_grid.backends.common.payload import launch_argv

WRAPPER = Path(__file__).resolve().parents[1] / "pilot" / "cops_pilot.py"
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable  # as on a worker node
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "USER": "root"}


def load_wrapper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cops_pilot", WRAPPER)
    if spec is None or spec.loader is None:
        sys.exit(f"cannot load {WRAPPER}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_rootfs(root: Path) -> Path:
    for sub in (
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "etc",
        "srv",
        "cvmfs",
        "home",
        "root",
    ):  # as the default image
        (root / sub).mkdir(parents=True, exist_ok=True)
    busybox = shutil.which("busybox")
    if busybox is None:
        sys.exit("busybox-static is needed (etc/deps/apt-pilot.txt)")
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in ("sh", "true"):
        (root / "bin" / applet).symlink_to("busybox")
    return root


def timed(argv: list[str], env: dict[str, str] | None, cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user+sys of the whole process tree) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@dataclass
class Row:
    label: str
    direct: tuple[float, float]  # medians: wall, cpu
    warm: tuple[float, float]
    setup: float
    cold: float


def median_pair(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def measure(
    pilot: ModuleType, runtime: str, rootfs: Path, base: Path, *, runs: int, wrappers: dict[str, Path]
) -> list[Row]:
    """One row per wrapper file, the direct runs interleaved with all of them (same load)."""
    workdir = base / f"wd-{runtime}"
    workdir.mkdir()
    if runtime == "host":
        direct_argv, direct_env = ["/bin/true"], dict(BASE_ENV)
        image = ["--image", "host:"]
    else:
        direct_argv, direct_env = pilot.build_launch(runtime, str(rootfs), ["/bin/true"], str(workdir))
        image = ["--image", str(rootfs), "--runtime", runtime]
    commands, cold = {}, {}
    for label, path in wrappers.items():
        launch = launch_argv(PYTHON, path, module=label == "module")
        argv = [*launch, *image, "--workdir", str(workdir), "--report", f"{label}.json"]
        env = {**BASE_ENV, "HOME": str(base), "COPS_PILOT_CONFIG": os.devnull}
        env["COPS_PILOT_CACHE_DIR"] = str(base / f"cache-{runtime}-{label}")
        commands[label] = ([*argv, "--", "/bin/true"], env)
        cold[label] = timed(*commands[label], workdir)[0]  # empty cache: probe + run
    direct: list[tuple[float, float]] = []
    warm: dict[str, list[tuple[float, float]]] = {label: [] for label in wrappers}
    setup: dict[str, list[float]] = {label: [] for label in wrappers}
    for _ in range(runs):  # interleaved, so load changes hit every variant alike
        direct.append(timed(direct_argv, direct_env, workdir))
        for label, (argv, env) in commands.items():
            warm[label].append(timed(argv, env, workdir))
            report = json.loads((workdir / f"{label}.json").read_text())
            setup[label].append(report["timings"]["setup_s"])
    return [
        Row(f"{runtime}{'' if label == 'wrapper' else ' (' + label + ')'}", median_pair(direct),
            median_pair(warm[label]), statistics.median(setup[label]), cold[label])
        for label in wrappers
    ]  # fmt: skip


def floors(runs: int, base: Path) -> list[tuple[str, tuple[float, float]]]:
    """What any Python wrapper pays: interpreter start, with and without site; compiling this file."""
    compile_cmd = f"compile(open({str(WRAPPER)!r}).read(), 'w', 'exec')"
    variants = [
        ("python3 -c pass", [PYTHON, "-c", "pass"]),
        ("python3 -S -c pass (no site)", [PYTHON, "-S", "-c", "pass"]),
        ("python3 compiling cops_pilot.py", [PYTHON, "-c", compile_cmd]),
    ]
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in variants}
    for _ in range(runs):
        for label, argv in variants:
            samples[label].append(timed(argv, None, base))
    return [(label, median_pair(samples[label])) for label, _ in variants]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--runtimes", default="host,charliecloud,bubblewrap,proot,runc")
    parser.add_argument("--baseline", type=Path, help="another wrapper file measured alongside")
    args = parser.parse_args()
    pilot = load_wrapper()
    # "module": how the local backend starts it (bytecode cached, no site): see payload.launch_argv
    wrappers = {"wrapper": WRAPPER, "module": WRAPPER}
    if args.baseline:
        wrappers["baseline"] = args.baseline.resolve()
    base = Path(tempfile.mkdtemp(prefix="cops-pilot-bench-"))
    try:
        rootfs = make_rootfs(base / "rootfs")
        print(f"{'':24} {'---- wall, median ms ----':^28} {'--- CPU user+sys, ms ---':^26}")
        header = ("runtime", "direct", "wrapper", "added", "direct", "wrapper", "added", "setup", "cold")
        print("{:<24} {:>8} {:>9} {:>8}  {:>7} {:>8} {:>8}  {:>6} {:>7}".format(*header))
        for runtime in args.runtimes.split(","):
            try:
                rows = measure(pilot, runtime, rootfs, base, runs=args.runs, wrappers=wrappers)
            except (subprocess.CalledProcessError, pilot.PilotError) as exc:
                print(f"{runtime:<24} skipped: {str(exc)[:80]}")
                continue
            for row in rows:
                (dw, dc), (ww, wc) = row.direct, row.warm
                print(
                    f"{row.label:<24} {dw * 1e3:8.1f} {ww * 1e3:9.1f} {(ww - dw) * 1e3:8.1f}  "
                    f"{dc * 1e3:7.1f} {wc * 1e3:8.1f} {(wc - dc) * 1e3:8.1f}  "
                    f"{row.setup * 1e3:6.1f} {row.cold * 1e3:7.1f}"
                )
        print(f"floor ({PYTHON}, {args.runs} runs each; CPU clock resolution is coarse, medians):")
        for label, (wall, cpu) in floors(args.runs, base):
            print(f"  {label:<34} wall {wall * 1e3:6.1f} ms   CPU {cpu * 1e3:6.1f} ms")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
