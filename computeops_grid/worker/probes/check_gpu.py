#!/usr/bin/env python3
"""GPU: devices on the node, the driver, and the devices visible inside the container.

NVIDIA devices (/dev/nvidia0...) and the driver version (``nvidia-smi`` when installed,
else /proc/driver/nvidia/version); with ``--image`` the wrapper starts the image with
``--gpu`` and the devices must be visible inside. Without ``--require`` a node with no GPU
is OK; with ``--require N`` fewer than N devices is CRITICAL.
"""

import glob
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probelib
from probelib import CRITICAL, OK, WARNING, ProbeError

_DRIVER_RE = re.compile(r"Kernel Module\s+(\S+)")


def build_parser():
    p = probelib.parser(__doc__)
    probelib.add_pilot_options(p)
    p.add_argument("--require", type=int, default=0, help="GPUs a job needs (0: none needed)")
    p.add_argument("--image", help="image started with --gpu to check visibility inside")
    return p


def devices():
    return sorted(path for path in glob.glob("/dev/nvidia[0-9]*") if re.search(r"nvidia\d+$", path))


def driver(timeout):
    """(driver version or '', GPU names); a failing nvidia-smi raises ProbeError."""
    smi = shutil.which("nvidia-smi")
    if smi:
        argv = [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"]
        code, out, err, _secs = probelib.run(argv, timeout)
        if code != 0:
            reason = (err.strip() or out.strip() or "no output").splitlines()[-1]
            raise ProbeError(f"nvidia-smi failed (exit {code}): {reason}")
        rows = [line.rsplit(",", 1) for line in out.strip().splitlines() if "," in line]
        return (rows[0][1].strip() if rows else ""), [row[0].strip() for row in rows]
    try:
        with open("/proc/driver/nvidia/version") as handle:
            match = _DRIVER_RE.search(handle.read())
        return (match.group(1) if match else ""), []
    except OSError:
        return "", []


def inside(args, found, result):
    command = ["/bin/sh", "-c", 'for d in "$@"; do [ -e "$d" ] && echo "$d"; done', "sh"] + found
    argv = probelib.pilot_argv(args, args.image, command, extra=["--gpu"])
    code, out, err, _secs = probelib.run(argv, args.timeout)
    if code in probelib.PILOT_OWN_CODES:
        result.add(CRITICAL, "GPU container failed: " + probelib.pilot_failure(code, err))
        return
    visible = [line for line in out.split() if line in found]
    result.perf("gpus_inside", len(visible), "", vmin=0)
    if len(visible) < len(found):
        result.add(CRITICAL, f"{len(visible)} of {len(found)} GPUs visible inside the container")
    else:
        result.add(OK, f"all {len(found)} visible inside the container")


def check(args, result):
    found = devices()
    version, names = driver(args.timeout)
    result.perf("gpus", len(found), "", None, args.require or None, 0)
    if not found:
        state = CRITICAL if args.require else OK
        result.add(state, "no GPU on this node ({} required)".format(args.require or "none"))
        return
    result.add(OK, "{} GPU(s){}".format(len(found), ": " + ", ".join(sorted(set(names))) if names else ""))
    result.detail("devices: {}".format(" ".join(found)))
    if len(found) < args.require:
        result.add(CRITICAL, f"{len(found)} GPUs, {args.require} required")
    if version:
        result.detail(f"driver {version}")
    else:
        result.add(WARNING, "GPU devices present but no driver version found")
    if args.image:
        inside(args, found, result)


if __name__ == "__main__":
    probelib.main("GPU", build_parser, check)
