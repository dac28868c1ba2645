#!/usr/bin/env python3
"""CPU: usable cores and the x86-64 micro-architecture level (v1..v4) from the CPU flags.

The level follows the x86-64 psABI definitions, read from the ``flags`` line of
/proc/cpuinfo (``--cpuinfo`` reads another file, e.g. one captured on a worker node).
Images built for x86-64-v3 crash with SIGILL on v2 nodes, hence ``--require-level``.
"""

import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probelib
from probelib import CRITICAL, OK, WARNING, ProbeError

LEVELS = (
    ("x86-64-v1", ("lm", "cmov", "cx8", "fpu", "fxsr", "mmx", "sse", "sse2")),
    ("x86-64-v2", ("cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3")),
    ("x86-64-v3", ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave")),
    ("x86-64-v4", ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")),
)
LEVEL_NAMES = [name for name, _flags in LEVELS]


def build_parser():
    p = probelib.parser(__doc__)
    p.add_argument("--cpuinfo", default="/proc/cpuinfo", help="file to read the CPU flags from")
    p.add_argument("--require-level", choices=LEVEL_NAMES, help="CRITICAL below this level")
    p.add_argument("--warn-level", choices=LEVEL_NAMES, help="WARNING below this level")
    probelib.add_thresholds(p, "cores", "cores", None, 1, "usable cores below")
    return p


def read_cpuinfo(path):
    """(flags of the first processor, model name, number of processor entries)."""
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError as exc:
        raise ProbeError(f"cannot read {path}: {exc.strerror}")
    flags, model, count = None, "", 0
    for line in text.splitlines():
        key, _sep, value = line.partition(":")
        key = key.strip()
        if key == "processor":
            count += 1
        elif key in ("flags", "Features") and flags is None:
            flags = set(value.split())
        elif key == "model name" and not model:
            model = value.strip()
    if flags is None:
        raise ProbeError(f"no CPU flags in {path}")
    return flags, model, count


def x86_level(flags):
    """Highest level whose flags (and all lower levels' flags) are present; 0 if none."""
    level = 0
    for index, (_name, needed) in enumerate(LEVELS):
        if not all(flag in flags for flag in needed):
            break
        level = index + 1
    return level


def usable_cores(cpuinfo_count):
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or cpuinfo_count
    try:  # cgroup v2 CPU quota ("max 100000" or "200000 100000")
        with open("/sys/fs/cgroup/cpu.max") as handle:
            quota, period = handle.read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def check(args, result):
    flags, model, count = read_cpuinfo(args.cpuinfo)
    cores = usable_cores(count) if args.cpuinfo == "/proc/cpuinfo" else count
    result.perf("cores", cores, "", args.warn_cores, args.crit_cores, 0)
    result.add(probelib.below(cores, args.warn_cores, args.crit_cores), f"{cores} cores")
    result.detail("model: {}".format(model or "unknown"))
    machine = platform.machine() if args.cpuinfo == "/proc/cpuinfo" else "x86_64"
    if "lm" not in flags and machine not in ("x86_64", "AMD64"):
        result.detail(f"architecture {machine}: x86-64 levels do not apply")
        if args.require_level:
            result.add(CRITICAL, f"{machine} is not x86-64 ({args.require_level} required)")
        return
    level = x86_level(flags)
    name = LEVEL_NAMES[level - 1] if level else "below x86-64-v1"
    result.perf("x86_64_level", level, "", vmin=0, vmax=4)
    missing = [f for _n, needed in LEVELS[level : level + 1] for f in needed if f not in flags]
    if missing:
        result.detail("next level misses: {}".format(" ".join(missing)))
    if args.require_level and level < LEVEL_NAMES.index(args.require_level) + 1:
        result.add(CRITICAL, f"{name}, {args.require_level} required")
    elif args.warn_level and level < LEVEL_NAMES.index(args.warn_level) + 1:
        result.add(WARNING, f"{name}, {args.warn_level} wanted")
    else:
        result.add(OK, name)


if __name__ == "__main__":
    probelib.main("CPU", build_parser, check)
