"""Test helper: set up a hostile or CVMFS-like node in private namespaces, then exec a command.

Run as root under ``unshare --mount --propagation private``, so nothing here touches the host's
mount table: it loop-mounts a squashfs read-only at the CVMFS path (the CVMFS stand-in; more
repositories with --also-squashfs IMAGE:DIR), can hide
/cvmfs behind an empty tmpfs, drops to an unprivileged user, and can disable user namespaces by
entering a user namespace (same uid, capabilities dropped before the command) whose
``max_user_namespaces`` is 0.
"""

from __future__ import annotations

import argparse
import os
import pwd
import subprocess


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--squashfs")
    parser.add_argument("--mountpoint", default="/cvmfs/unpacked.cern.ch")
    parser.add_argument(
        "--also-squashfs", action="append", default=[], metavar="IMAGE:DIR", help="one more repository"
    )
    parser.add_argument("--hide-cvmfs", action="store_true")
    parser.add_argument("--readonly", action="append", default=[], help="remount a directory read-only")
    parser.add_argument("--user")
    parser.add_argument("--no-userns", action="store_true")
    parser.add_argument("--limit-userns", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.limit_userns:
        with open("/proc/sys/user/max_user_namespaces", "w") as handle:
            handle.write("0\n")
        command = ["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--", *command]
        os.execvp(command[0], command)
    if args.squashfs:
        subprocess.run(
            ["mount", "-t", "squashfs", "-o", "loop,ro", args.squashfs, args.mountpoint], check=True
        )
    for pair in args.also_squashfs:
        image, mountpoint = pair.split(":", 1)
        subprocess.run(["mount", "-t", "squashfs", "-o", "loop,ro", image, mountpoint], check=True)
    if args.hide_cvmfs:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "none", "/cvmfs"], check=True)
    for path in args.readonly:
        subprocess.run(["mount", "--bind", path, path], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", path], check=True)
    if args.user:
        entry = pwd.getpwnam(args.user)
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    if args.no_userns:
        me = ["/usr/bin/python3", os.path.abspath(__file__), "--limit-userns", "--"]
        command = ["unshare", "--user", "--map-current-user", "--keep-caps", "--", *me, *command]
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
