#!/usr/bin/env python3
"""Stand-in for worker/cops_pilot.py, used by the grid tests only while the real wrapper
has not landed in the tree. It honours the wrapper's command-line contract
(``--image X --report F [--workdir D] [--env K=V]... -- CMD ARGS``), runs CMD without a
container and writes the report with ``exit_code``. The tests prefer the real wrapper.
"""

import json
import subprocess
import sys


def main(argv):
    split = argv.index("--")
    opts, cmd = argv[:split], argv[split + 1 :]
    env = {}
    report = "cops-report.json"
    i = 0
    while i < len(opts):
        if opts[i] == "--env":
            key, _, value = opts[i + 1].partition("=")
            env[key] = value
        if opts[i] == "--report":
            report = opts[i + 1]
        i += 2 if opts[i] in ("--env", "--report", "--image", "--image-root", "--workdir", "--runtime") else 1
    import os

    code = subprocess.call(cmd, env=dict(os.environ, **env))
    with open(report, "w") as out:
        json.dump({"exit_code": code, "runtime": "stand-in"}, out)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
