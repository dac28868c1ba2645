#!/usr/bin/env python3
"""Container runtime: which runtime the pilot wrapper picks on this node, and why others lost.

Runs ``cops-pilot --list-runtimes --json`` (the wrapper's own functional probes: each
runtime starts a trivial container). OK when a runtime works, WARNING when only one
outside ``--prefer`` works, CRITICAL when none works.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probelib
from probelib import CRITICAL, OK, WARNING, ProbeError

_OK_KEYS = ("ok", "works", "usable", "working", "available")
_WHY_KEYS = ("reason", "error", "why", "detail", "message")


def build_parser():
    p = probelib.parser(__doc__)
    probelib.add_pilot_options(p)
    p.add_argument("--image", help="image the wrapper probes with (default: its own choice)")
    p.add_argument("--prefer", help="runtimes the VO wants (a,b): WARNING when another one wins")
    return p


def entries_of(data):
    """Normalise the wrapper's table to [(name, works, why, mode)]."""
    if isinstance(data, dict):
        data = data.get("runtimes", data.get("probes", data))
        if isinstance(data, dict):  # {name: {...}}
            data = [dict(value, name=key) for key, value in data.items() if isinstance(value, dict)]
    if not isinstance(data, list):
        raise ProbeError("unexpected --list-runtimes output: not a list of runtimes")
    rows = []
    for item in data:
        if not isinstance(item, dict) or "name" not in item:
            continue
        works = any(item.get(key) is True for key in _OK_KEYS)
        if str(item.get("status", "")).lower() in ("ok", "works", "usable"):
            works = True
        why = next((str(item[key]) for key in _WHY_KEYS if item.get(key)), "")
        if not works and item.get("status"):
            why = "{}{}".format(item["status"], ": " + why if why else "")
        rows.append((str(item["name"]), works, why, str(item.get("mode", "") or "")))
    return rows


def check(args, result):
    argv = probelib.pilot_base(args) + ["--list-runtimes", "--json"]
    if args.image:
        argv += ["--image", args.image]
    if args.image_root:
        argv += ["--image-root", args.image_root]
    if args.runtime:
        argv += ["--runtime", args.runtime]
    code, out, err, seconds = probelib.run(argv, args.timeout)
    result.perf("probe_time", seconds, "s", vmin=0)
    if code in probelib.PILOT_OWN_CODES and not out.strip():
        raise ProbeError(probelib.pilot_failure(code, err))
    try:
        rows = entries_of(json.loads(out))
    except ValueError:
        raise ProbeError(f"wrapper printed no JSON (exit {code}): {(err or out).strip()[-200:]}")
    if not rows:
        raise ProbeError("the wrapper reported no runtimes at all")
    working = [row for row in rows if row[1]]
    for name, works, why, mode in rows:
        tag = "works" if works else "refused"
        result.detail(
            "{}: {}{}{}".format(name, tag, " (" + mode + ")" if mode else "", " - " + why if why else "")
        )
    result.perf("working_runtimes", len(working), "", None, 1, 0, len(rows))
    if not working:
        result.add(CRITICAL, f"no working container runtime ({len(rows)} probed)")
        return
    winner = working[0]
    prefer = [name for name in (args.prefer or "").split(",") if name]
    text = "{} wins{}; also working: {}".format(
        winner[0], " (" + winner[3] + ")" if winner[3] else "", ", ".join(r[0] for r in working[1:]) or "none"
    )
    if prefer and winner[0] not in prefer:
        result.add(WARNING, text + "; preferred {} not working".format("/".join(prefer)))
    else:
        result.add(OK, text)


if __name__ == "__main__":
    probelib.main("RUNTIME", build_parser, check)
