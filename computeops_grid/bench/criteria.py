"""The study's criteria as measured columns: security, administration, ease of use.

Each cell is found on this machine, by running a payload through the runtime's adapter or by
asking dpkg and /proc, never typed in. Cells that already exist in the feature matrix
(``features.CHECKS``: user namespace, sees the host, payload writes the image, works rootless)
are not measured twice: :data:`CRITERIA` groups the columns of both under the three headings,
and the report shows them that way.

- administration: the Debian packages a minimal Debian (priorities required and important)
  must add for the runtime (the launcher's package, the daemon's, and their dependency closure)
  with their installed size; the daemons of those packages running while a payload runs, and
  as whom; their configuration files in /etc, and how many differ from the package's own.
- security: setuid files those packages install; whether the payload is still in the
  caller's cgroup (a batch system's limits and accounting hold) or in one of its own.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import subprocess
from pathlib import Path

from computeops_grid.bench import features
from computeops_grid.bench.runtimes import Adapter

log = logging.getLogger(__name__)

# packages that hold a runtime's daemon when the launcher is only its client (the client's
# package does not depend on the server's)
SERVER_PACKAGES = {"docker": ("docker.io",), "lxd": ("lxd",)}
BASE_PRIORITIES = ("required", "important")
DEP = re.compile(r"^\s*([a-z0-9][a-z0-9+.-]*)")

SECURITY = (
    "privilege mode (declared)",
    "setuid helpers (dpkg)",
    "daemon running as root (measured)",
    "user namespace",
    "sees the host (pid/net namespaces, /dev)",
    "payload in the caller's cgroup",
    "memory cap of the caller honoured",
    "payload writes the image",
)
ADMINISTRATION = (
    "packages to add to a minimal Debian (dpkg)",
    "daemons kept running (measured)",
    "configuration files (dpkg)",
)
EASE_OF_USE = (
    "from a Docker image to a running payload (measured)",
    "image conversion needed",
    "works rootless (measured)",
)
CRITERIA = {"security": SECURITY, "administration": ADMINISTRATION, "ease of use": EASE_OF_USE}


LAUNCHER_ROOT = re.compile(r'^ROOT = "(/[^"]+)"$', re.MULTILINE)


def debian_root(binary: str) -> str:
    """The Debian root a launcher script enters (scripts/apptainer-launcher.py), else "" (the host)."""
    try:
        head = Path(binary).read_bytes()[:4096]
    except OSError:
        return ""
    if not head.startswith(b"#!"):
        return ""
    match = LAUNCHER_ROOT.search(head.decode(errors="replace"))
    return match.group(1) if match and Path(match.group(1), "var/lib/dpkg").is_dir() else ""


def _query(root: str) -> list[str]:
    return ["dpkg-query", f"--admindir={root}/var/lib/dpkg"] if root else ["dpkg-query"]


def _dpkg(root: str) -> list[str]:
    return ["dpkg", f"--root={root}"] if root else ["dpkg"]


@functools.lru_cache(maxsize=4)
def installed(root: str = "") -> dict[str, tuple[str, int, list[str]]]:
    """Every installed package: (priority, installed KiB, dependencies); virtual names resolved."""
    fmt = "${Package}\t${Status}\t${Priority}\t${Installed-Size}\t${Provides}\t${Depends}, ${Pre-Depends}\n"
    out = subprocess.run([*_query(root), "-W", "-f", fmt], capture_output=True, text=True, check=False).stdout
    table: dict[str, tuple[str, int, list[str]]] = {}
    provides: dict[str, str] = {}
    raw: dict[str, str] = {}
    for line in out.splitlines():
        name, status, priority, size, prov, deps = (line.split("\t") + [""] * 6)[:6]
        if not status.endswith(" installed"):
            continue
        table[name] = (priority, int(size or 0), [])
        raw[name] = deps
        for virtual in prov.split(","):
            if m := DEP.match(virtual):
                provides.setdefault(m.group(1), name)
    for name, deps in raw.items():
        for clause in deps.split(","):
            for alt in clause.split("|"):  # the first alternative that is installed
                m = DEP.match(alt)
                target = m and (m.group(1) if m.group(1) in table else provides.get(m.group(1)))
                if target:
                    table[name][2].append(target)
                    break
    return table


def owner(path: str, root: str = "") -> str:
    """The package that holds ``path`` (its real path; in ``root`` when given), or ""."""
    proc = subprocess.run(
        [*_dpkg(root), "-S", path if root else str(Path(path).resolve())],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.split(":", 1)[0].split(",")[0].strip() if proc.returncode == 0 else ""


def _in_root(root: str, name: str) -> str:
    """``/usr/bin/NAME`` of ``root``, its symlinks followed inside the root."""
    path = f"/usr/bin/{name}"
    for _ in range(8):
        link = Path(root + path)
        if not link.is_symlink():
            break
        target = os.readlink(link)
        path = target if target.startswith("/") else os.path.normpath(f"{Path(path).parent}/{target}")
    return path


def runtime_packages(adapter: Adapter) -> tuple[list[str], str]:
    """The launcher's and the daemon's packages (those installed), and the Debian root they are in
    ("" for the host; a launcher of scripts/debian-roots.sh runs the program of its root)."""
    root = debian_root(adapter.binary)
    launcher = owner(_in_root(root, Path(adapter.binary).name), root) if root else owner(adapter.binary)
    names = [launcher, *SERVER_PACKAGES.get(adapter.name, ())]
    return [n for n in dict.fromkeys(names) if n and n in installed(root)], root


def _deps(roots: list[str], root: str = "") -> set[str]:
    table, seen, todo = installed(root), set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in table:
            continue
        seen.add(name)
        todo += table[name][2]
    return seen


@functools.lru_cache(maxsize=4)
def minimal_debian(root: str = "") -> frozenset[str]:
    """What a minimal Debian has: the packages of priority required and important, with their deps."""
    table = installed(root)
    return frozenset(_deps([n for n, (prio, _s, _d) in table.items() if prio in BASE_PRIORITIES], root))


def closure(roots: list[str], root: str = "") -> list[str]:
    """``roots`` and their dependencies, less what a minimal Debian already has."""
    base = minimal_debian(root)
    return sorted(n for n in _deps(roots, root) if n in roots or n not in base)


def package_files(names: list[str], root: str = "") -> list[str]:
    """The files of ``names`` (as host paths: under ``root`` when given)."""
    if not names:
        return []
    out = subprocess.run([*_dpkg(root), "-L", *names], capture_output=True, text=True, check=False).stdout
    return [root + line for line in out.splitlines() if line.startswith("/")]


def _where(root: str) -> str:
    return f" (Debian {_suite(root)} root {root})" if root else ""


def _suite(root: str) -> str:
    try:
        text = Path(root, "etc/os-release").read_text()
    except OSError:
        return "?"
    codename = [
        ln.split("=", 1)[1].strip('"') for ln in text.splitlines() if ln.startswith("VERSION_CODENAME=")
    ]
    return codename[0] if codename and codename[0] else "sid"


def packages_cell(adapter: Adapter, work: Path) -> str:
    roots, root = runtime_packages(adapter)
    if not roots:
        return "not from a Debian package (built or unpacked by the set-up)"
    names = closure(roots, root)
    size = sum(installed(root)[n][1] for n in names) / 1024
    shown = ", ".join(names[:8]) + (f", … {len(names) - 8} more" if len(names) > 8 else "")
    return f"{len(names)} packages, {size:.0f} MiB installed ({shown}){_where(root)}"


def setuid_cell(adapter: Adapter, work: Path) -> str:
    roots, root = runtime_packages(adapter)
    if not roots:
        mode = Path(adapter.binary).stat().st_mode
        return "setuid launcher" if mode & 0o4000 else "none (launcher not setuid; not from a package)"
    found = []
    for path in package_files(closure(roots, root), root):
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if st.st_mode & 0o4000 and os.path.isfile(path) and not os.path.islink(path):
                found.append(path)
    found = [f[len(root) :] if root else f for f in found]
    return ("none" if not found else ", ".join(sorted(found))) + _where(root)


def conffiles_cell(adapter: Adapter, work: Path) -> str:
    roots, root = runtime_packages(adapter)
    if not roots:
        return "none from a package"
    out = subprocess.run(
        [*_query(root), "-W", "-f", "${Conffiles}\n", *closure(roots, root)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    total, changed = 0, []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[-1] == "obsolete":
            continue
        total += 1
        try:
            digest = hashlib.md5(Path(root + parts[0]).read_bytes(), usedforsecurity=False).hexdigest()
        except OSError:
            changed.append(parts[0] + " (removed)")
            continue
        if digest != parts[1]:
            changed.append(parts[0])
    edited = f", changed: {', '.join(changed)}" if changed else ", none changed from the package's"
    return f"{total} in /etc{edited}{_where(root)}"


def _daemon_procs(adapter: Adapter, exclude: set[int]) -> list[str]:
    """Running processes whose executable comes from the runtime's packages, not ``exclude``."""
    roots, root = runtime_packages(adapter)
    files = (
        {f[len(root) :] if root else f for f in package_files(closure(roots, root), root)} if roots else set()
    )
    files.add(str(Path(adapter.binary).resolve()))
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        with contextlib.suppress(OSError):
            exe = os.readlink(entry / "exe")
            if exe in files:
                uid = int((entry / "status").read_text().split("\nUid:")[1].split()[0])
                found.append(f"{Path(exe).name} ({'root' if uid == 0 else f'uid {uid}'})")
    return sorted(set(found))


def _subtree(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                children.setdefault(features._parent(int(entry.name)), []).append(int(entry.name))
    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo += children.get(pid, [])
    return seen


_daemons: dict[tuple[str, str], str] = {}


def daemons_cell(adapter: Adapter, work: Path) -> str:
    """While a payload runs: which of the runtime's own programs run outside the launcher's tree."""
    key = (adapter.name, str(adapter.private))
    if key not in _daemons:
        _daemons[key] = _measure_daemons(adapter, work)
    return _daemons[key]


def _measure_daemons(adapter: Adapter, work: Path) -> str:
    proc, pid = features._start_sleeper(adapter, work, "sleep TOKEN")
    try:
        if pid is None:
            return "not measured: payload not found in /proc"
        running = _daemon_procs(adapter, _subtree(proc.pid) | {pid, os.getpid()})
    finally:
        features._stop(proc, pid)
    return ", ".join(running) if running else "none (nothing of the runtime runs outside the launcher)"


def root_daemon_cell(adapter: Adapter, work: Path) -> str:
    cell = daemons_cell(adapter, work)
    if cell.startswith(("none", "not measured")):
        return "no daemon" if cell.startswith("none") else cell
    return ("yes: " if "(root)" in cell else "no: ") + cell


def _cgroup(pid: int | str) -> str:
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    memory = [ln.split(":", 2)[2] for ln in lines if ":memory:" in ln]
    return memory[0] if memory else lines[-1].split(":", 2)[2]


def cgroup_cell(adapter: Adapter, work: Path) -> str:
    """Is the payload in the cgroup of the process that launched it (the batch job's)?"""
    proc, pid = features._start_sleeper(adapter, work, "sleep TOKEN")
    try:
        if pid is None:
            return "not measured: payload not found in /proc"
        mine, theirs = _cgroup("self"), _cgroup(pid)
    finally:
        features._stop(proc, pid)
    if theirs == mine:
        return "yes (same cgroup as the caller)"
    if theirs.startswith(mine.rstrip("/") + "/"):
        return f"yes (a child cgroup of the caller's: {theirs})"
    return f"no: escapes to {theirs}"


CHECKS = {
    "setuid helpers (dpkg)": setuid_cell,
    "daemon running as root (measured)": root_daemon_cell,
    "payload in the caller's cgroup": cgroup_cell,
    "packages to add to a minimal Debian (dpkg)": packages_cell,
    "daemons kept running (measured)": daemons_cell,
    "configuration files (dpkg)": conffiles_cell,
}
