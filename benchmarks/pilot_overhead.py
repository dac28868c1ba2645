"""The pilot wrapper's added latency against calling the same runtime directly, in one run.

For each runtime that works here: median wall time of `/bin/true` in a busybox rootfs launched
(a) directly with the argv the wrapper builds (`build_launch`), (b) through `cops-pilot` with a
warm probe cache; plus the cold cost (empty probe cache: probe + run). Goal: (b) - (a) <= 10 ms.

    python3 benchmarks/pilot_overhead.py [--runs 20] [--runtimes proot,charliecloud,bubblewrap]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

WRAPPER = Path(__file__).resolve().parents[1] / "pilot" / "cops_pilot.py"
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable  # as on a worker node


def load_wrapper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cops_pilot", WRAPPER)
    if spec is None or spec.loader is None:
        sys.exit(f"cannot load {WRAPPER}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_rootfs(root: Path) -> Path:
    for sub in ("bin", "dev", "proc", "sys", "tmp", "etc", "srv", "home", "root"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    busybox = shutil.which("busybox")
    if busybox is None:
        sys.exit("busybox-static is needed (etc/deps/apt-pilot.txt)")
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in ("sh", "true"):
        (root / "bin" / applet).symlink_to("busybox")
    return root


def timed(argv: list[str], env: dict[str, str] | None, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(pilot: ModuleType, runtime: str, rootfs: Path, base: Path, runs: int) -> tuple[float, ...]:
    """Medians of (direct, through the wrapper, wrapper setup), then cold run and interpreter start."""
    workdir = base / f"wd-{runtime}"
    workdir.mkdir()
    cache = base / f"cache-{runtime}"
    direct_argv, direct_env = pilot.build_launch(runtime, str(rootfs), ["/bin/true"], str(workdir))
    wrapper = [PYTHON, str(WRAPPER), "--image", str(rootfs), "--runtime", runtime, "--workdir", str(workdir)]
    wrapper += ["--report", "r.json", "--", "/bin/true"]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(base), "USER": "root"}
    env["COPS_PILOT_CACHE_DIR"] = str(cache)
    env["COPS_PILOT_CONFIG"] = "/dev/null"
    cold = timed(wrapper, env, workdir)  # empty cache: probe + run
    python_start = statistics.median(timed([PYTHON, "-c", "pass"], None, workdir) for _ in range(runs))
    direct, warm, setup = [], [], []
    for _ in range(runs):  # interleaved, so load changes hit both equally
        direct.append(timed(direct_argv, direct_env, workdir))
        warm.append(timed(wrapper, env, workdir))
        setup.append(json.loads((workdir / "r.json").read_text())["timings"]["setup_s"])
    medians = (statistics.median(direct), statistics.median(warm), statistics.median(setup))
    return (*medians, cold, python_start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--runtimes", default="charliecloud,bubblewrap,proot,runc")
    args = parser.parse_args()
    pilot = load_wrapper()
    base = Path(tempfile.mkdtemp(prefix="cops-pilot-bench-"))
    try:
        rootfs = make_rootfs(base / "rootfs")
        header = ("runtime", "direct ms", "wrapper ms", "added ms", "ratio", "setup ms", "cold ms")
        print("{:<13} {:>9} {:>10} {:>8} {:>6} {:>8} {:>8}".format(*header))
        python_ms = 0.0
        for runtime in args.runtimes.split(","):
            try:
                direct, warm, setup, cold, python_start = measure(pilot, runtime, rootfs, base, args.runs)
            except (subprocess.CalledProcessError, pilot.PilotError) as exc:
                print(f"{runtime:<13} skipped: {str(exc)[:80]}")
                continue
            python_ms = python_start * 1e3
            print(
                f"{runtime:<13} {direct * 1e3:9.1f} {warm * 1e3:10.1f} {(warm - direct) * 1e3:8.1f} "
                f"{warm / direct:6.2f} {setup * 1e3:8.1f} {cold * 1e3:8.1f}"
            )
        print(f"({PYTHON} start alone: {python_ms:.1f} ms median; {args.runs} runs each)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
