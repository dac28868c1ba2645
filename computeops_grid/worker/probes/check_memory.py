#!/usr/bin/env python3
"""Memory per core: physical memory (or the job's cgroup limit, when lower) over usable cores.

WLCG sites commit to about 2 GB per core; a node or a batch slot that gives less makes
multi-core payloads swap or get killed. The cgroup limit is read for cgroup v2
(``memory.max``) and v1 (``memory.limit_in_bytes``) of the probe's own cgroup.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probelib
from probelib import ProbeError

GIB = float(1 << 30)
_NO_LIMIT = 1 << 60


def build_parser():
    p = probelib.parser(__doc__)
    p.add_argument("--meminfo", default="/proc/meminfo", help="file to read MemTotal from")
    p.add_argument("--cores", type=int, help="cores the job gets (default: usable cores of this process)")
    probelib.add_thresholds(p, "per-core", "GiB", 2.0, 1.0, "memory per core below")
    return p


def mem_total(path):
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError) as exc:
        raise ProbeError(f"cannot read MemTotal from {path}: {exc}")
    raise ProbeError(f"no MemTotal line in {path}")


def cgroup_limit():
    """The memory limit of this process's cgroup in bytes, or None when unlimited."""
    try:
        with open("/proc/self/cgroup") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        _hid, controllers, path = line.split(":", 2)
        if controllers == "":
            candidate = os.path.join("/sys/fs/cgroup", path.lstrip("/"), "memory.max")
        elif "memory" in controllers.split(","):
            candidate = os.path.join("/sys/fs/cgroup/memory", path.lstrip("/"), "memory.limit_in_bytes")
        else:
            continue
        try:
            with open(candidate) as handle:
                value = handle.read().strip()
        except OSError:
            continue
        if value != "max" and value.isdigit() and int(value) < _NO_LIMIT:
            limits.append(int(value))
    return min(limits) if limits else None


def check(args, result):
    total = mem_total(args.meminfo)
    limit = cgroup_limit() if args.meminfo == "/proc/meminfo" else None
    usable = min(total, limit) if limit else total
    if args.cores is not None and args.cores < 1:
        raise ProbeError("--cores must be at least 1")
    cores = args.cores or len(os.sched_getaffinity(0))
    per_core = usable / GIB / cores
    result.perf("mem_per_core", round(per_core, 3), "GB", args.warn_per_core, args.crit_per_core, 0)
    result.perf("mem_total", round(total / GIB, 3), "GB", vmin=0)
    state = probelib.below(per_core, args.warn_per_core, args.crit_per_core)
    result.add(state, f"{per_core:.2f} GiB per core ({usable / GIB:.1f} GiB over {cores} cores)")
    result.detail(f"MemTotal {total / GIB:.2f} GiB")
    if limit:
        result.detail(f"cgroup memory limit {limit / GIB:.2f} GiB")


if __name__ == "__main__":
    probelib.main("MEMORY", build_parser, check)
