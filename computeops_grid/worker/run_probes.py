#!/usr/bin/env python3
"""Run the site-validation probes of a plan and write one JSON result file (Python 3.6+, stdlib).

    run_probes.py [--plan plan.json] [--out validation-result.json] [--probes DIR]

Inside the bundle (a zipapp) the probes, the pilot wrapper and the plan are extracted to a
private directory in the job's scratch first. The plan is a JSON list of
``{"name": ..., "script": "check_x.py", "args": [...], "timeout": s}``. The exit code is 0
when the result file was written (the probes' states are in it), 3 otherwise.
"""

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile

STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
_PERF = re.compile(r"('[^']+'|[^\s=]+)=(\S+)")
_NUMBER = re.compile(r"^(-?[0-9.]+)([a-zA-Z%]*)$")


def parse_perfdata(text):
    perf = {}
    for label, value in _PERF.findall(text):
        fields = value.split(";")
        match = _NUMBER.match(fields[0])
        if not match:
            continue
        item = {"value": float(match.group(1)), "uom": match.group(2)}
        for key, raw in zip(("warn", "crit", "min", "max"), fields[1:]):
            if raw:
                item[key] = raw
        perf[label.strip("'")] = item
    return perf


def parse_output(text):
    """Nagios plugin output -> (summary line, perfdata dict, detail lines)."""
    lines = text.rstrip("\n").splitlines() or [""]
    first, _sep, perf = lines[0].partition("|")
    return first.strip(), parse_perfdata(perf), lines[1:]


def run_probe(probes_dir, entry, env):
    script = os.path.join(probes_dir, entry["script"])
    argv = [sys.executable, script] + [str(a) for a in entry.get("args", [])]
    timeout = float(entry.get("timeout", 300))
    start = time.time()
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            universal_newlines=True,
        )
        out, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        code, out = 3, "{} UNKNOWN - probe timed out after {:.0f} s\n".format(entry["name"], timeout)
    except OSError as exc:
        code, out, err = 3, "{} UNKNOWN - cannot start probe: {}\n".format(entry["name"], exc), ""
    if code not in STATES:
        out = "{} UNKNOWN - probe exited {}\n{}".format(entry["name"], code, out)
        code = 3
    summary, perf, details = parse_output(out)
    return {
        "name": entry["name"],
        "state": code,
        "status": STATES[code],
        "summary": summary,
        "perfdata": perf,
        "details": details,
        "stderr": err[-2000:],
        "seconds": round(time.time() - start, 3),
    }


def user_name():
    """The account the probes ran as (a CE maps grid users to local accounts)."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


def extract_bundle(target):
    """When run from a zipapp, unpack it (probes, wrapper, plan) into ``target``."""
    archive = os.path.dirname(os.path.abspath(__file__))
    if not zipfile.is_zipfile(archive):
        return os.path.dirname(os.path.abspath(__file__))
    with zipfile.ZipFile(archive) as bundle:
        for name in bundle.namelist():
            path = os.path.realpath(os.path.join(target, name))
            if not path.startswith(os.path.realpath(target) + os.sep):
                raise SystemExit(f"refusing bundle member {name!r} outside the target")
        bundle.extractall(target)
    return target


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plan", help="plan file (default: plan.json of the bundle)")
    p.add_argument("--out", default="validation-result.json", help="result file to write")
    p.add_argument("--probes", help="probes directory (default: the bundle's)")
    p.add_argument("--site", default="", help="site name recorded in the result")
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix=".cops-validation-", dir=os.getcwd())
    try:
        root = extract_bundle(work)
        probes_dir = args.probes or os.path.join(root, "probes")
        with open(args.plan or os.path.join(root, "plan.json")) as handle:
            plan = json.load(handle)
        env = dict(os.environ)
        if os.path.isfile(os.path.join(root, "cops_pilot.py")):
            env.setdefault("COPS_PILOT", os.path.join(root, "cops_pilot.py"))
        started = time.time()
        probes = []
        for entry in plan.get("probes", []):
            probes.append(run_probe(probes_dir, entry, env))
            sys.stdout.write("{}: {} {}\n".format(entry["name"], probes[-1]["status"], probes[-1]["summary"]))
            sys.stdout.flush()
        result = {
            "schema": 1,
            "site": args.site or plan.get("site", ""),
            "host": socket.gethostname(),
            "user": user_name(),
            "python": platform.python_version(),
            "started": started,
            "finished": time.time(),
            "probes": probes,
        }
        tmp = args.out + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(result, handle, indent=1, sort_keys=True)
        os.replace(tmp, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
