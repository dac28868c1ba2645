#!/usr/bin/env python3
"""Binds: the job's scratch directory and /cvmfs are visible inside the container.

A token file written into scratch on the node must be readable inside the container (in
its working directory), a file written there must come back to the node, and when the
node has ``/cvmfs/REPO`` the container must list the same entries.
"""

import os
import shutil
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probelib
from probelib import CRITICAL, OK, ProbeError

# Fixed script; the paths arrive as positional arguments ($1, $2), never spliced in.
SCRIPT = (
    'echo "pwd=$(pwd)"; '
    'if [ -r "$1" ]; then echo "token=$(cat "$1")"; fi; '
    'echo inside > "$1.back" && echo "write=ok"; '
    'if [ -n "$2" ]; then echo "cvmfs=$(ls "$2" 2>/dev/null | head -n 5 | tr "\\n" " ")"; fi'
)


def build_parser():
    p = probelib.parser(__doc__)
    probelib.add_pilot_options(p)
    p.add_argument("--image", required=True, help="image to start (one the campaign names)")
    p.add_argument("--repo", default="unpacked.cern.ch", help="CVMFS repository expected inside")
    return p


def parse(out):
    values = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def check(args, result):
    scratch = tempfile.mkdtemp(prefix=".cops-bind-probe-", dir=probelib.scratch_dir())
    try:
        check_in(args, result, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def check_in(args, result, scratch):
    token = uuid.uuid4().hex
    with open(os.path.join(scratch, "token"), "w") as handle:
        handle.write(token)
    host_repo = os.path.join("/cvmfs", args.repo)
    repo_arg = host_repo if os.path.isdir(host_repo) and os.listdir(host_repo) else ""
    command = ["/bin/sh", "-c", SCRIPT, "sh", "token", repo_arg]
    argv = probelib.pilot_argv(args, args.image, command, extra=["--workdir", scratch])
    code, out, err, seconds = probelib.run(argv, args.timeout, cwd=scratch)
    result.perf("run_time", seconds, "s", vmin=0)
    if code in probelib.PILOT_OWN_CODES:
        raise ProbeError("binds not testable: " + probelib.pilot_failure(code, err))
    seen = parse(out)
    result.detail("inside: pwd={} exit={}".format(seen.get("pwd", "?"), code))
    if seen.get("token") != token:
        result.add(CRITICAL, "scratch not visible inside the container (token file unreadable)")
    elif seen.get("write") != "ok" or not os.path.isfile(os.path.join(scratch, "token.back")):
        result.add(CRITICAL, "scratch not writable from inside the container")
    else:
        result.add(OK, "scratch bound read-write at {}".format(seen.get("pwd", "?")))
    if not repo_arg:
        result.detail(f"{host_repo} absent or empty on the node: /cvmfs bind not checked")
        return
    host_entries = sorted(os.listdir(host_repo))[:5]
    inside = seen.get("cvmfs", "").split()
    if not inside:
        result.add(CRITICAL, f"{host_repo} not visible inside the container")
    elif sorted(inside) != sorted(host_entries):
        result.add(CRITICAL, f"{host_repo} differs inside the container")
    else:
        result.add(OK, f"{host_repo} visible inside")


if __name__ == "__main__":
    probelib.main("BINDS", build_parser, check)
