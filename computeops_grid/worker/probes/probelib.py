"""Shared helpers of the site-validation probes (Nagios plugin API, Python 3.6+, stdlib only).

Every ``check_*.py`` next to this file is a Nagios/ETF plugin: it prints one status line
``NAME STATE - summary | perfdata`` followed by detail lines, and exits with
0 OK, 1 WARNING, 2 CRITICAL or 3 UNKNOWN. Probes import this module from their own
directory, so the directory can be copied anywhere (a worker node, a Nagios host).
"""

import argparse
import os
import re
import subprocess
import sys
import time
import traceback

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
PILOT_NAMES = ("cops_pilot.py", "cops-pilot")
# The exit codes kept from payloads (the wrapper's own failures): a copy of cops_pilot.EXIT_RESERVED,
# as the probes must run where the wrapper cannot be imported; tests/pilot/test_tables.py pins it.
PILOT_OWN_CODES = range(240, 250)
_LABEL_OK = re.compile(r"^[A-Za-z0-9_.:/-]+$")


class ProbeError(Exception):
    """The probe cannot decide (bad arguments, missing tool): reported as UNKNOWN."""


class Result:
    """Collects the worst state, a summary, perfdata and detail lines of one probe run."""

    def __init__(self, name):
        self.name = name
        self.state = OK
        self.messages = []  # (state, text): the summary is built from the worst ones
        self.perfdata = []
        self.details = []

    def add(self, state, text):
        """Record a finding; the probe's state is the worst state added."""
        if state == UNKNOWN and self.state in (OK, WARNING):
            self.state = UNKNOWN
        elif state == CRITICAL:
            self.state = CRITICAL
        elif state == WARNING and self.state == OK:
            self.state = WARNING
        self.messages.append((state, text))

    def detail(self, text):
        self.details.append(text)

    def perf(self, label, value, uom="", warn=None, crit=None, vmin=None, vmax=None):
        """One perfdata item, ``'label'=value[uom];[warn];[crit];[min];[max]``."""
        if not _LABEL_OK.match(label):
            label = "'" + label.replace("'", "_") + "'"
        fields = [_num(value) + uom] + ["" if v is None else _num(v) for v in (warn, crit, vmin, vmax)]
        while fields and fields[-1] == "":
            fields.pop()
        self.perfdata.append(label + "=" + ";".join(fields))

    def summary(self):
        worst = [text for state, text in self.messages if state == self.state]
        if self.state == OK or not worst:
            worst = [text for _state, text in self.messages] or ["no findings"]
        return "; ".join(worst)

    def render(self):
        line = f"{self.name} {STATE_NAMES[self.state]} - {self.summary()}"
        if self.perfdata:
            line += " | " + " ".join(self.perfdata)
        return "\n".join([line] + self.details)


def _num(value):
    if isinstance(value, float):
        return ("%.6f" % value).rstrip("0").rstrip(".") or "0"
    return str(value)


def finish(result):
    """Print the plugin output and exit with its state."""
    sys.stdout.write(result.render() + "\n")
    sys.stdout.flush()
    sys.exit(result.state)


def main(name, build_parser, check):
    """Run ``check(args, result)``; any unexpected failure becomes UNKNOWN, never a traceback."""
    result = Result(name)
    try:
        args = build_parser().parse_args()
        check(args, result)
    except ProbeError as exc:
        result.add(UNKNOWN, str(exc))
    except SystemExit as exc:  # argparse: bad arguments are UNKNOWN in the plugin API
        if exc.code not in (0, None):
            result.add(UNKNOWN, "invalid arguments (see --help)")
        else:
            raise
    except Exception as exc:
        result.add(UNKNOWN, f"probe error: {type(exc).__name__}: {exc}")
        result.details.extend(traceback.format_exc().splitlines()[-3:])
    finish(result)


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds for each external command")
    return p


def add_thresholds(p, name, unit, warn, crit, help_text):
    p.add_argument(
        "--warn-" + name, type=float, default=warn, help="WARNING " + help_text + " (" + unit + ")"
    )
    p.add_argument(
        "--crit-" + name, type=float, default=crit, help="CRITICAL " + help_text + " (" + unit + ")"
    )


def below(value, warn, crit):
    """State of ``value`` for a 'must be at least' threshold pair."""
    if crit is not None and value < crit:
        return CRITICAL
    if warn is not None and value < warn:
        return WARNING
    return OK


def above(value, warn, crit):
    """State of ``value`` for a 'must be at most' threshold pair."""
    if crit is not None and value > crit:
        return CRITICAL
    if warn is not None and value > warn:
        return WARNING
    return OK


def run(argv, timeout, env=None, cwd=None):
    """Run argv (never a shell string); return (exit code, stdout, stderr, seconds)."""
    start = time.time()
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            universal_newlines=True,
        )
    except OSError as exc:
        raise ProbeError(f"cannot run {argv[0]}: {exc.strerror or exc}")
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return -9, out, err + f"\ntimed out after {timeout:.0f} s", time.time() - start
    return proc.returncode, out, err, time.time() - start


def find_pilot(explicit=None):
    """The pilot wrapper: --pilot, $COPS_PILOT, or next to / above the probes directory."""
    if explicit:
        if not os.path.isfile(explicit):
            raise ProbeError(f"pilot wrapper {explicit} not found")
        return explicit
    if os.environ.get("COPS_PILOT") and os.path.isfile(os.environ["COPS_PILOT"]):
        return os.environ["COPS_PILOT"]
    here = os.path.dirname(os.path.abspath(__file__))
    for folder in (
        here,
        os.path.dirname(here),
        os.path.join(os.path.dirname(os.path.dirname(here)), "pilot"),
    ):
        for name in PILOT_NAMES:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    raise ProbeError("pilot wrapper not found: pass --pilot or set COPS_PILOT")


def add_pilot_options(p):
    p.add_argument("--pilot", help="the pilot wrapper file (default: shipped next to the probes)")
    p.add_argument("--image-root", help="image repository root passed to the wrapper (default: its own)")
    p.add_argument("--runtime", help="runtime preference list passed to the wrapper (a,b,...)")


def pilot_base(args):
    """The interpreter and wrapper file that start every wrapper call."""
    return [sys.executable, find_pilot(args.pilot)]


def pilot_argv(args, image, command, report=None, extra=None):
    """argv running ``command`` in ``image`` through the wrapper (see backends/payload.py)."""
    argv = pilot_base(args) + ["--image", image]
    if report:
        argv += ["--report", report]
    if args.image_root:
        argv += ["--image-root", args.image_root]
    if args.runtime:
        argv += ["--runtime", args.runtime]
    return argv + list(extra or []) + ["--"] + list(command)


def pilot_failure(code, err):
    """One line explaining a wrapper-own exit code (240-249), from its stderr."""
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    reason = lines[-1] if lines else "no message"
    return f"pilot wrapper failed with its own code {code}: {reason}"


def scratch_dir(explicit=None):
    """Scratch as the pilot sees it: --path, $_CONDOR_SCRATCH_DIR, $TMPDIR, else the cwd."""
    for candidate in (explicit, os.environ.get("_CONDOR_SCRATCH_DIR"), os.environ.get("TMPDIR")):
        if candidate:
            return candidate
    return os.getcwd()
