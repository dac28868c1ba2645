#!/usr/bin/env python3
"""Image run: each of the campaign's images runs through the pilot wrapper and prints a checksum.

For every ``--image REF`` the wrapper runs ``sha256sum FILE`` inside the container
(``--file``, default /bin/sh). With ``--sha256 REF=HEX`` the printed checksum must match:
a mismatch means the site serves another image than the VO published.
"""

import json
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probelib
from probelib import CRITICAL, ProbeError

_HEX = re.compile(r"\b([0-9a-f]{64})\b")


def build_parser():
    p = probelib.parser(__doc__)
    probelib.add_pilot_options(p)
    p.add_argument("--image", action="append", default=[], help="image reference to run (repeatable)")
    p.add_argument("--sha256", action="append", default=[], help="REF=HEX expected checksum of --file")
    p.add_argument("--file", default="/bin/sh", help="file inside the image whose sha256 is printed")
    probelib.add_thresholds(p, "time", "s", 60.0, 300.0, "run time above")
    return p


def expected_sums(items):
    sums = {}
    for item in items:
        ref, sep, value = item.rpartition("=")
        if not sep or not ref or not re.match(r"^[0-9a-fA-F]{64}$", value):
            raise ProbeError(f"--sha256 expects REF=<64 hex digits>, got {item!r}")
        sums[ref] = value.lower()
    return sums


def report_runtime(path):
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return ""
    chosen = data.get("runtime") if isinstance(data, dict) else ""
    if isinstance(chosen, dict):
        chosen = chosen.get("name", "")
    return str(chosen or "")


def run_image(args, ref, expect, result, index):
    scratch = tempfile.mkdtemp(prefix=".cops-image-probe-", dir=probelib.scratch_dir())
    try:
        run_in(args, ref, expect, result, index, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_in(args, ref, expect, result, index, scratch):
    report = os.path.join(scratch, "report.json")
    argv = probelib.pilot_argv(args, ref, ["sha256sum", args.file], report, ["--workdir", scratch])
    code, out, err, seconds = probelib.run(argv, args.timeout, cwd=scratch)
    runtime = report_runtime(report)
    result.perf(f"image{index}_time", seconds, "s", args.warn_time, args.crit_time, 0)
    result.detail("{}: exit {} in {:.2f} s via {}".format(ref, code, seconds, runtime or "?"))
    if code in probelib.PILOT_OWN_CODES:
        result.add(CRITICAL, f"{ref}: {probelib.pilot_failure(code, err)}")
        return
    if code != 0:
        tail = (err.strip().splitlines() or ["no output"])[-1]
        result.add(CRITICAL, f"{ref}: sha256sum exited {code}: {tail}")
        return
    match = _HEX.search(out)
    if not match:
        result.add(CRITICAL, f"{ref}: no checksum printed")
        return
    got = match.group(1)
    result.detail(f"{ref}: sha256({args.file}) = {got}")
    if expect and got != expect:
        result.add(CRITICAL, f"{ref}: checksum mismatch ({got[:12]}... expected {expect[:12]}...)")
        return
    state = probelib.above(seconds, args.warn_time, args.crit_time)
    result.add(state, "{} ran in {:.1f} s{}".format(ref, seconds, ", checksum matches" if expect else ""))


def check(args, result):
    if not args.image:
        raise ProbeError("no --image given: nothing to run")
    sums = expected_sums(args.sha256)
    for index, ref in enumerate(args.image):
        run_image(args, ref, sums.get(ref), result, index)


if __name__ == "__main__":
    probelib.main("IMAGE_RUN", build_parser, check)
