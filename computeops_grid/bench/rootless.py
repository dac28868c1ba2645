"""Does a runtime work rootless? Measured: the pilot wrapper runs a payload as an unprivileged user.

The check does what a grid site does: an ordinary account starts the real wrapper
(``worker/cops_pilot.py``, copied where that account can read it) with ``--runtime NAME
--require-container`` on the bench image, and the payload reports its uid and exits 3.
The adapter then builds its argv as that user (runc writes a rootless bundle, udocker drops
``--allow-root``...), so the cell says what really happens, not what the adapter declares.
When the study itself runs unprivileged, the wrapper runs as the current user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from computeops_grid.bench.runtimes import DAEMON_ENV, SBIN_PATH, Adapter

DEFAULT_USER = "nobody"  # exists everywhere; the tests use copsuser (tests/pilot creates it)
PYTHON = "/usr/bin/python3"  # the system interpreter: any account can run it
EXIT = 3
TIMEOUT = 120.0
USER_PATH = "/usr/local/bin:/usr/bin:/bin:" + SBIN_PATH
PROBE_FAILED = re.compile(r"(\w[\w.-]*):probe-failed\((.*)\)\)")
REASON_CHARS = 160


def unreachable(path: Path, uid: int, gid: int) -> str:
    """Why ``uid`` cannot reach ``path`` (a parent without search permission), or ""."""
    for parent in reversed([path, *path.parents]):
        try:
            st = parent.stat()
        except OSError as exc:
            return f"{parent}: {exc.strerror}"
        if stat.S_ISDIR(st.st_mode) and not _may(st, uid, gid, 0o1):
            mode = stat.S_IMODE(st.st_mode)
            return f"{parent} (mode {mode:04o}, owner uid {st.st_uid}) is closed to uid {uid}"
    return ""


def _may(st: os.stat_result, uid: int, gid: int, bit: int) -> bool:
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid == gid:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


@contextlib.contextmanager
def _user_area(entry: pwd.struct_passwd | None) -> Iterator[Path]:
    """A temporary directory owned by the user (HOME, workdir, the wrapper copy)."""
    area = Path(tempfile.mkdtemp(prefix="cops-rootless-", dir="/tmp"))
    try:
        for sub in ("home", "work", "bin"):
            (area / sub).mkdir()
        if entry is not None:
            for path in (area, *area.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        yield area
    finally:
        shutil.rmtree(area, ignore_errors=True)


def _udocker_launcher(bindir: Path) -> str:
    """udocker is often a pip package in root's own interpreter: give the user a copy."""
    try:
        import udocker  # type: ignore[import-untyped]  # noqa: PLC0415 - only for udocker
    except ImportError:
        return ""
    lib = bindir.parent / "pylib"
    shutil.copytree(
        Path(udocker.__file__).parent, lib / "udocker", ignore=shutil.ignore_patterns("__pycache__")
    )
    launcher = bindir / "udocker"
    launcher.write_text(
        f"#!{PYTHON}\nimport sys\nsys.path.insert(0, {str(lib)!r})\n"
        "from udocker.maincmd import main\nsys.exit(main())\n"
    )
    for path in (launcher, *lib.rglob("*")):
        path.chmod(0o755 if path.is_dir() or path == launcher else 0o644)
    return " (udocker copied from root's Python for the user)"


def works_rootless(adapter: Adapter, work: Path, user: str = DEFAULT_USER) -> str:
    """Run ``id -u; exit 3`` through the wrapper's adapter as ``user``; the cell says what happened."""
    own = getattr(adapter.runtime, "works_rootless", None)
    if own is not None:  # a study adapter (bench/lxc.py) checks itself
        return str(own(adapter.binary, user))
    if adapter.name not in adapter.pilot.RUNTIMES:
        return f"not measured: the wrapper has no {adapter.name} adapter of its own"
    root = os.geteuid() == 0
    try:
        entry = pwd.getpwnam(user) if root else None
    except KeyError:
        return f"not measured: no user {user!r} on this machine"
    uid, gid = (entry.pw_uid, entry.pw_gid) if entry else (os.geteuid(), os.getegid())
    if root and uid == 0:
        return f"not measured: {user!r} is root"
    closed = unreachable(adapter.rootfs, uid, gid)
    if closed:
        return f"not measured: the image is out of the user's reach: {closed}"
    with _user_area(entry) as area:
        return _run_as(adapter, area, entry, uid)


def _run_as(adapter: Adapter, area: Path, entry: pwd.struct_passwd | None, uid: int) -> str:
    wrapper = area / "bin" / "cops_pilot.py"
    shutil.copy2(str(adapter.pilot.__file__), wrapper)
    wrapper.chmod(0o755)
    note, path = "", USER_PATH
    binary_dir = Path(adapter.binary).parent
    if unreachable(Path(adapter.binary), uid, entry.pw_gid if entry else os.getegid()):
        note = _udocker_launcher(area / "bin") if adapter.name == "udocker" else ""
        if not note:
            return f"not measured: {adapter.binary} is out of the user's reach"
    else:
        path = f"{binary_dir}:{USER_PATH}"
    path = f"{area / 'bin'}:{path}"
    if entry is not None:
        for item in (area / "bin").rglob("*"):
            os.lchown(item, entry.pw_uid, entry.pw_gid)
    name = entry.pw_name if entry else os.environ.get("USER", str(uid))
    env = {
        "PATH": path,
        "HOME": str(area / "home"),
        "USER": name,
        "LOGNAME": name,
        "COPS_PILOT_CONFIG": os.devnull,  # the site's config must not change what is measured
    }
    env.update({k: os.environ[k] for k in DAEMON_ENV if k in os.environ})  # e.g. the study's own dockerd
    argv = [PYTHON, str(wrapper), "--image", str(adapter.rootfs), "--runtime", adapter.name]
    argv += [
        "--require-container",
        "--workdir",
        str(area / "work"),
        "--",
        "/bin/sh",
        "-c",
        f"id -u; exit {EXIT}",
    ]
    if entry is not None:
        drop = [f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", "--inh-caps=-all"]
        argv = ["setpriv", *drop, "--", *argv]
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"not measured: {exc}"
    inside = proc.stdout.strip().splitlines()[:1]
    who = f"uid {uid} outside, {inside[0]} inside" if inside and inside[0].isdigit() else f"uid {uid}"
    if proc.returncode == EXIT and inside and inside[0].isdigit():
        return f"yes (as {name}, {who}){note}"
    return f"no (as {name}, exit {proc.returncode}: {_reason(proc.stderr)}){note}"


def _reason(stderr: str) -> str:
    """The runtime's own words from the wrapper's error line (its probe output), else the last line.

    Long messages keep their head (what failed) and tail (the cause, e.g. "permission denied").
    """
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    match = PROBE_FAILED.search(last)
    text = f"{match.group(1)}: {match.group(2)}" if match else last
    if len(text) <= REASON_CHARS:
        return text
    return text[: REASON_CHARS // 3] + " … " + text[-(REASON_CHARS - REASON_CHARS // 3) :]
