#!/usr/bin/env python3
"""cops_dirac_launch.py B64ARGS: start the cops-grid pilot wrapper with arguments a JDL cannot carry.

DIRAC's JDL strings have no escapes (``"`` is dropped, ``;`` ends the value, ``[`` hangs the
parser), so cops-grid sends such a job's wrapper arguments as ``b64:<urlsafe base64 of a
JSON list>``. This file (standard library, Python 3.6+) travels in the input sandbox next
to cops_pilot.py, decodes the list and replaces itself with the wrapper.
"""

import base64
import json
import os
import sys

# The wrapper's own code for unusable arguments: a copy of cops_pilot.EXIT_BAD_ARGS (importing
# the wrapper here would compile it on every job); tests/pilot/test_tables.py pins it.
EXIT_BAD_ARGS = 240


def main(argv):
    if len(argv) != 2 or not argv[1].startswith("b64:"):
        sys.stderr.write("cops_dirac_launch: expected one argument b64:<encoded wrapper arguments>\n")
        return EXIT_BAD_ARGS
    try:
        args = json.loads(base64.urlsafe_b64decode(argv[1][4:].encode("ascii")).decode("utf-8"))
    except ValueError as exc:
        sys.stderr.write(f"cops_dirac_launch: cannot decode the arguments: {exc}\n")
        return EXIT_BAD_ARGS
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        sys.stderr.write("cops_dirac_launch: the arguments are not a list of strings\n")
        return EXIT_BAD_ARGS
    wrapper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cops_pilot.py")
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, wrapper, *args])  # noqa: S606 - argv list, no shell
    return EXIT_BAD_ARGS  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
