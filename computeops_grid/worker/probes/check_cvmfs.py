#!/usr/bin/env python3
"""CVMFS: the repositories a VO needs are mounted and readable, and how fast a read is.

With the CVMFS client installed (``cvmfs_config`` on PATH and the default /cvmfs root),
each repository is first checked with ``cvmfs_config probe REPO``. In every case a known
file of each repository is read and the latency (listing + read) is measured.
"""

import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probelib
from probelib import CRITICAL, ProbeError

_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PROBE_LINE = re.compile(r"^Probing\s+(\S+?)\.\.\.\s+(.*)$")
_MAX_READ = 1 << 20


def build_parser():
    p = probelib.parser(__doc__)
    p.add_argument(
        "--repo", action="append", help="repository to check (repeatable; default unpacked.cern.ch)"
    )
    p.add_argument("--cvmfs-root", default=os.environ.get("COPS_CVMFS_ROOT", "/cvmfs"), help="mount root")
    p.add_argument("--known-file", action="append", default=[], help="REPO:PATH of a file to read")
    p.add_argument("--no-client", action="store_true", help="do not call cvmfs_config even if present")
    probelib.add_thresholds(p, "latency", "s", 1.0, 5.0, "read latency above")
    return p


def check(args, result):
    repos = args.repo or ["unpacked.cern.ch"]
    known = parse_known(args.known_file)
    for repo in repos:
        if not _REPO_RE.match(repo):
            raise ProbeError(f"invalid repository name {repo!r}")
    client = None if args.no_client else shutil.which("cvmfs_config")
    if client and os.path.abspath(args.cvmfs_root) == "/cvmfs":
        client_probe(client, repos, args.timeout, result)
    elif not os.path.isdir(args.cvmfs_root):
        result.add(CRITICAL, f"CVMFS root {args.cvmfs_root} missing (no client, nothing mounted)")
        return
    for repo in repos:
        check_repo(os.path.join(args.cvmfs_root, repo), repo, known.get(repo), args, result)


def parse_known(items):
    known = {}
    for item in items:
        repo, sep, path = item.partition(":")
        if not sep or not repo or not path:
            raise ProbeError(f"--known-file expects REPO:PATH, got {item!r}")
        known[repo] = path.lstrip("/")
    return known


def client_probe(client, repos, timeout, result):
    """``cvmfs_config probe``: one line per repository, 'OK' or 'Failed!'."""
    code, out, err, _secs = probelib.run([client, "probe"] + repos, timeout)
    seen = {}
    for line in (out + "\n" + err).splitlines():
        match = _PROBE_LINE.match(line.strip())
        if match:
            seen[os.path.basename(match.group(1))] = match.group(2).strip()
    result.detail(
        "cvmfs_config probe exit {}: {}".format(code, ", ".join(k + " " + v for k, v in seen.items()))
    )
    for repo in repos:
        verdict = seen.get(repo)
        if verdict is None or not verdict.startswith("OK"):
            result.add(CRITICAL, "{}: cvmfs_config probe {}".format(repo, verdict or "gave no answer"))


def first_file(root):
    """A small regular file near the top of the repository (breadth-first, bounded)."""
    queue, seen = [root], 0
    while queue and seen < 200:
        folder = queue.pop(0)
        try:
            entries = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in entries:
            seen += 1
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                return path
            if os.path.isdir(path) and not os.path.islink(path):
                queue.append(path)
    return None


def check_repo(path, repo, known, args, result):
    start = time.time()
    if not os.path.isdir(path):
        result.add(CRITICAL, f"{repo}: not mounted ({path} missing)")
        return
    try:
        entries = os.listdir(path)
    except OSError as exc:
        result.add(CRITICAL, f"{repo}: cannot list {path}: {exc.strerror}")
        return
    if not entries:
        result.add(CRITICAL, f"{repo}: {path} is empty (not mounted?)")
        return
    target = os.path.join(path, known) if known else first_file(path)
    if target is None:
        result.add(CRITICAL, f"{repo}: no readable file found")
        return
    try:
        with open(target, "rb") as handle:
            size = len(handle.read(_MAX_READ))
    except OSError as exc:
        result.add(CRITICAL, f"{repo}: cannot read {target}: {exc.strerror}")
        return
    latency = time.time() - start
    state = probelib.above(latency, args.warn_latency, args.crit_latency)
    result.add(state, f"{repo} readable in {latency:.3f} s")
    result.perf(repo + "_latency", latency, "s", args.warn_latency, args.crit_latency, 0)
    result.detail(f"{repo}: read {size} bytes of {target}")


if __name__ == "__main__":
    probelib.main("CVMFS", build_parser, check)
