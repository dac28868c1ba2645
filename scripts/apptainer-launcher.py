#!/usr/bin/python3
"""``apptainer`` (or ``singularity``) of a Debian sid root, run on this Debian 12 host in place.

scripts/debian-roots.sh installs this file as ``<cache>/bin/apptainer`` and ``singularity``
with ROOT filled in. It enters the root and execs ``/usr/bin/<name>`` there, in the same
process (no fork: the caller's signals and the exit status are Apptainer's own), so the pilot
wrapper calls it exactly as a worker node's Apptainer:

* a private mount namespace (plus a user namespace mapping the caller's own uid when not
  root, as an unprivileged user's Apptainer gets in user-namespace mode);
* a new root: the sid root under a tmpfs overlay (nothing is written into the cached root),
  with the host's /proc, /dev, /sys, /etc/passwd and /etc/group, a fresh /run, and host paths
  at the same path: /tmp, /var/tmp, /home, /cvmfs, the working directory and every existing
  absolute path named in the arguments (image, --bind sources, --home);
* ``pivot_root`` into it (Apptainer refuses a chroot), then exec.

Host paths under /usr, /etc, /var (but /var/tmp), /opt, /proc, /dev, /sys and /run stay the
sid root's. Runs with the host's python3 (standard library only); x86_64 and aarch64.
"""

import ctypes
import os
import platform
import sys

ROOT = "@ROOT@"
HOST_SYSTEM = ("proc", "dev", "sys")
SYSTEM = ("usr", "etc", "var", "opt", *HOST_SYSTEM, "run", "bin", "sbin", "lib", "lib32", "lib64", "boot")
HOST_TMP = "/var/tmp"  # noqa: S108 - the host's, bound at the same path (the one host path under /var)
ALWAYS = ("/tmp", HOST_TMP, "/home", "/cvmfs")  # noqa: S108 - the host's, bound at the same path
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MNT_DETACH = 2
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

libc = ctypes.CDLL(None, use_errno=True)


def check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        sys.stderr.write(f"FATAL:   apptainer launcher: {what}: {os.strerror(errno)}\n")
        sys.exit(255)


def mount(src: str, dst: str, fstype: str = "", flags: int = 0) -> None:
    args = (src.encode(), dst.encode(), fstype.encode() or None, flags, None)
    check(libc.mount(*args), f"mount {src} on {dst}")


def host_paths(args: list[str]) -> list[str]:
    """Host paths to bind at the same path: the fixed ones, the cwd, paths named in ``args``."""
    found = [p for p in ALWAYS if os.path.isdir(p)]
    cwd = os.getcwd()
    for text in [cwd, *args]:
        for part in text.replace(",", ":").split(":"):
            if part.startswith("/") and os.path.lexists(part):
                found.append(os.path.realpath(part))
    chosen: list[str] = []
    for path in sorted(set(found), key=len):
        top = path.strip("/").split("/")[0]
        if not top or (top in SYSTEM and not path.startswith(HOST_TMP)):
            continue
        if not any(path == c or path.startswith(c.rstrip("/") + "/") for c in chosen):
            chosen.append(path)
    return chosen


def enter(scratch: str, args: list[str]) -> None:
    uid, gid = os.geteuid(), os.getegid()
    binds = host_paths(args)
    cwd = os.getcwd()
    if uid == 0:
        check(libc.unshare(CLONE_NEWNS), "unshare")
    else:
        check(libc.unshare(CLONE_NEWNS | CLONE_NEWUSER), "unshare (user namespace)")
        maps = {"setgroups": "deny", "uid_map": f"{uid} {uid} 1", "gid_map": f"{gid} {gid} 1"}
        for name, text in maps.items():  # the caller's own ids, nothing else
            with open(f"/proc/self/{name}", "w") as handle:
                handle.write(text)
    mount("none", "/", flags=MS_REC | MS_PRIVATE)
    # one overlay mount, the sid root below a tmpfs: mount points are made in the tmpfs, never in
    # the cached root, and /usr is no mount of its own (Apptainer finds its files from the path
    # of its own executable, which the kernel gives relative to the mount holding it)
    mount("tmpfs", scratch, "tmpfs")
    upper, work, new = (os.path.join(scratch, d) for d in ("upper", "work", "root"))
    for directory in (upper, work, new):
        os.mkdir(directory)
    options = f"lowerdir={ROOT},upperdir={upper},workdir={work}".encode()
    check(libc.mount(b"overlay", new.encode(), b"overlay", 0, options), "mount overlay")
    for entry in HOST_SYSTEM:
        mount("/" + entry, os.path.join(new, entry), flags=MS_BIND | MS_REC)
    mount("tmpfs", os.path.join(new, "run"), "tmpfs")
    for name in ("/etc/passwd", "/etc/group"):  # the host's users, as Apptainer looks them up
        mount(name, new + name, flags=MS_BIND)
    for path in binds:
        dst = new + path
        if os.path.isdir(path):
            os.makedirs(dst, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if not os.path.lexists(dst):
                with open(dst, "w"):
                    pass
        mount(path, dst, flags=MS_BIND | MS_REC)
    number = PIVOT_ROOT.get(platform.machine())
    if number is None:
        check(-1, f"pivot_root on {platform.machine()}")
    os.chdir(new)
    check(libc.syscall(number, b".", b"."), "pivot_root")
    check(libc.umount2(b".", MNT_DETACH), "detaching the host root")
    os.chdir(cwd if os.path.isdir(cwd) else "/")


def main() -> None:
    name = os.path.basename(sys.argv[0])
    tool = "singularity" if name.startswith("singularity") else "apptainer"
    if not os.path.isfile(os.path.join(ROOT, "usr", "bin", "apptainer")):
        sys.stderr.write(f"FATAL:   apptainer launcher: no Apptainer root at {ROOT}\n")
        sys.exit(255)
    enter(os.path.join(ROOT, "mnt"), sys.argv[1:])
    os.execv(f"/usr/bin/{tool}", [tool, *sys.argv[1:]])  # noqa: S606 - in place: signals reach it


if __name__ == "__main__":
    main()
