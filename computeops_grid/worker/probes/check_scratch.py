#!/usr/bin/env python3
"""Scratch: free space and sequential write throughput of the job's scratch directory.

The directory is the one the pilot wrapper binds for the payload: ``--path``, else
``$_CONDOR_SCRATCH_DIR``, ``$TMPDIR`` or the current directory. The write test writes
``--size`` MiB with fsync into a temporary file there and removes it.
"""

import errno
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probelib
from probelib import CRITICAL, ProbeError

GIB = float(1 << 30)
MIB = 1 << 20


def build_parser():
    p = probelib.parser(__doc__)
    p.add_argument("--path", help="scratch directory (default: as the pilot wrapper picks it)")
    p.add_argument("--size", type=int, default=64, help="MiB written by the throughput test (0 skips it)")
    probelib.add_thresholds(p, "free", "GiB", 10.0, 1.0, "free space below")
    probelib.add_thresholds(p, "throughput", "MiB/s", 20.0, 2.0, "write throughput below")
    return p


def write_test(path, size_mib):
    """Seconds to write and fsync ``size_mib`` MiB; raises OSError (e.g. ENOSPC)."""
    block = b"\xa5" * MIB
    handle, name = tempfile.mkstemp(prefix=".cops-scratch-probe-", dir=path)
    try:
        start = time.time()
        for _ in range(size_mib):
            os.write(handle, block)
        os.fsync(handle)
        return time.time() - start
    finally:
        os.close(handle)
        os.unlink(name)


def check(args, result):
    path = probelib.scratch_dir(args.path)
    if not os.path.isdir(path):
        raise ProbeError(f"scratch directory {path} does not exist")
    stat = os.statvfs(path)
    free = stat.f_bavail * stat.f_frsize / GIB
    total = stat.f_blocks * stat.f_frsize / GIB
    result.perf("free", round(free, 3), "GB", args.warn_free, args.crit_free, 0, round(total, 3))
    result.add(probelib.below(free, args.warn_free, args.crit_free), f"{free:.2f} GiB free in {path}")
    if not os.access(path, os.W_OK):
        result.add(CRITICAL, f"{path} is not writable")
        return
    if args.size <= 0:
        return
    try:
        seconds = write_test(path, args.size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            result.add(CRITICAL, f"scratch full: writing {args.size} MiB failed ({exc.strerror})")
        else:
            result.add(CRITICAL, f"write test failed: {exc.strerror or exc}")
        return
    rate = args.size / max(seconds, 1e-6)
    result.perf("write_MiB_per_s", round(rate, 1), "", args.warn_throughput, args.crit_throughput, 0)
    state = probelib.below(rate, args.warn_throughput, args.crit_throughput)
    result.add(state, f"write {rate:.0f} MiB/s")
    result.detail(f"wrote {args.size} MiB with fsync in {seconds:.3f} s")


if __name__ == "__main__":
    probelib.main("SCRATCH", build_parser, check)
