#!/usr/bin/env python3
"""User namespaces: the kernel limits, and an actual unprivileged unshare.

Unprivileged container runtimes (apptainer without setuid, charliecloud, bubblewrap,
podman rootless, runc rootless) need user namespaces. The probe reads the limits from
/proc/sys and then creates a user + mount namespace in a child process; as root the
child first drops to an unprivileged user (``--as-user``, default nobody), so the test
is the one a pilot's payload user faces.
"""

import ctypes
import ctypes.util
import errno
import os
import pwd
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probelib
from probelib import CRITICAL, OK, WARNING, ProbeError

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
_SYSCTLS = (
    ("user", "max_user_namespaces"),
    ("user", "max_mnt_namespaces"),
    ("kernel", "unprivileged_userns_clone"),  # Debian/Ubuntu patch (0 disables)
    ("kernel", "apparmor_restrict_unprivileged_userns"),  # Ubuntu >= 23.10 (1 restricts)
)


def build_parser():
    p = probelib.parser(__doc__)
    p.add_argument("--sysctl-root", default="/proc/sys", help="where the kernel limits are read")
    p.add_argument("--as-user", default="nobody", help="user the unshare test runs as when started as root")
    probelib.add_thresholds(p, "max", "namespaces", 1000, 1, "max_user_namespaces below")
    return p


def read_limits(root):
    if not os.path.isdir(os.path.join(root, "user")):
        raise ProbeError("cannot read user namespace limits: {} missing".format(os.path.join(root, "user")))
    limits = {}
    for folder, name in _SYSCTLS:
        try:
            with open(os.path.join(root, folder, name)) as handle:
                limits[name] = int(handle.read().strip())
        except (OSError, ValueError):
            continue
    return limits


def try_unshare(user):
    """Fork; the child drops root when it can and unshares. Returns (works, why, who)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    pid = os.fork()
    if pid == 0:  # child: answers through its exit status only (errno, +100 if still root)
        offset = 0
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(user)
                os.setgroups([])
                os.setgid(entry.pw_gid)
                os.setuid(entry.pw_uid)
            except (KeyError, OSError):  # e.g. inside a user namespace where it is unmapped
                offset = 100
        failed = libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0
        os._exit(offset + (min(ctypes.get_errno(), 99) or 99 if failed else 0))
    _pid, status = os.waitpid(pid, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 99
    if os.geteuid() != 0:
        who = f"as uid {os.geteuid()}"
    elif code >= 100:
        who = f"as root: could not switch to {user!r}"
    else:
        who = f"as {user}"
    code %= 100
    if code == 0:
        return True, "unshare(CLONE_NEWUSER|CLONE_NEWNS) works", who
    return False, "unshare failed: {}".format(os.strerror(code) if code < 99 else "unknown error"), who


def check(args, result):
    limits = read_limits(args.sysctl_root)
    for name, value in sorted(limits.items()):
        result.detail(f"{name} = {value}")
    maximum = limits.get("max_user_namespaces")
    if maximum is not None:
        state = probelib.below(maximum, args.warn_max, args.crit_max)
        if state != OK:
            result.add(state, f"max_user_namespaces is {maximum}")
        result.perf("max_user_namespaces", maximum, "", args.warn_max, args.crit_max, 0)
    if limits.get("unprivileged_userns_clone") == 0:
        result.add(WARNING, "kernel.unprivileged_userns_clone=0 (unprivileged namespaces disabled)")
    if limits.get("apparmor_restrict_unprivileged_userns") == 1:
        result.add(WARNING, "AppArmor restricts unprivileged user namespaces")
    start = time.time()
    works, why, who = try_unshare(args.as_user)
    result.perf("unshare_time", time.time() - start, "s", vmin=0)
    if works:
        result.add(OK, f"unprivileged user namespaces work ({who})")
    elif why.endswith(os.strerror(errno.ENOSPC)):
        result.add(CRITICAL, f"user namespaces exhausted or disabled: {why} ({who})")
    else:
        result.add(CRITICAL, f"{why} ({who})")


if __name__ == "__main__":
    probelib.main("USERNS", build_parser, check)
