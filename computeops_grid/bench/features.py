"""The measured feature matrix: what each runtime does, found out by running payloads.

Every cell comes from a run through the same pilot adapter the benchmark uses (or, for
"declared" cells, from the adapter's own attributes, and the cell says so). A check that
cannot run here says why instead of guessing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from computeops_grid.bench import rootless
from computeops_grid.bench.runtimes import Adapter

log = logging.getLogger(__name__)

TIMEOUT = 60.0
MEM_CAP_MIB = 64
MEM_ALLOC_MIB = 256
IDENTITY_MAP = ["0", "0", "4294967295"]
SIMD = ("sse4_2", "avx", "avx2", "fma", "avx512f")


def _run(adapter: Adapter, cmd: list[str], work: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    argv, env = adapter.launch(cmd, work, **kw)  # type: ignore[arg-type]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def exit_code(adapter: Adapter, work: Path) -> str:
    rc = _run(adapter, ["/bin/sh", "-c", "exit 42"], work).returncode
    return "42 passed" if rc == 42 else f"exit 42 came back as {rc}"


def signal_death(adapter: Adapter, work: Path) -> str:
    """The payload is SIGKILLed from the host (as an OOM killer would): what does the caller see?"""
    proc, pid = _start_sleeper(adapter, work, "exec sleep TOKEN")
    if pid is None:
        _stop(proc, pid)
        return "not measured: payload not found in /proc"
    os.kill(pid, signal.SIGKILL)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        _stop(proc, None)
        return "launcher still running 15 s after the payload was killed"
    rc = proc.returncode
    if rc in (137, -9):
        return f"seen as {rc}"
    if adapter.runtime.signal_of(rc, err or "") == signal.SIGKILL:
        return f"exit {rc}, signal 9 on stderr"
    return f"lost: exit {rc}"


def _find(token: str) -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", token.encode()]:
                    return int(entry.name)
    return None


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _start_sleeper(adapter: Adapter, work: Path, script: str) -> tuple[subprocess.Popen[str], int | None]:
    token = f"{300 + os.getpid() % 100}.{time.monotonic_ns() % 10**6}"
    argv, env = adapter.launch(["/bin/sh", "-c", script.replace("TOKEN", token)], work)
    proc = subprocess.Popen(  # own process group: _stop can take down whatever the launcher left
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 15
    pid = None
    while pid is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        pid = _find(token)
    return proc, pid


def _stop(proc: subprocess.Popen[str], pid: int | None) -> None:
    targets = [proc.pid]
    if pid:
        targets.insert(0, pid)
        with contextlib.suppress(OSError, ValueError, IndexError):
            shell = _parent(pid)  # the payload's own `sh` loop: under proot/udocker it outlives the launcher
            if shell != proc.pid and _comm(shell) == "sh":
                targets.insert(0, shell)
    for target in targets:
        with contextlib.suppress(OSError):
            os.kill(target, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)  # e.g. proot under a killed udocker keeps running
    with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
        proc.communicate(timeout=15)  # reaps the launcher and closes its pipes
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def daemon(adapter: Adapter, work: Path) -> str:
    """Is the payload a descendant of the launching command? If not, who holds it."""
    proc, pid = _start_sleeper(adapter, work, "sleep TOKEN")
    try:
        if pid is None:
            return "not measured: payload not found in /proc"
        if pid == proc.pid:
            return "no (the launcher execs into the payload)"
        chain, cur = [], pid
        while cur > 1:
            cur = _parent(cur)
            chain.append(cur)
            if cur == proc.pid:
                return f"no (payload is a child of the launcher, {len(chain)} level(s) down)"
        holder = _comm(chain[0]) if chain else "?"
        return (
            f"detached: the payload's parent is {holder} (pid {chain[0] if chain else '?'}), not the launcher"
        )
    finally:
        _stop(proc, pid)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def sigterm_forwarded(adapter: Adapter, work: Path) -> str:
    marker = work / "sigterm-seen"
    marker.unlink(missing_ok=True)
    script = "trap 'echo seen > /srv/sigterm-seen; exit 7' TERM; while :; do sleep TOKEN & wait $!; done"
    proc, pid = _start_sleeper(adapter, work, script)
    try:
        if pid is None:
            return "not measured: payload not found in /proc"
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if marker.exists():
            return "yes"
        if proc.returncode is None:
            return "no (launcher still running 10 s after SIGTERM, payload not told)"
        return f"no (launcher exit {proc.returncode}, payload not told)"
    finally:
        _stop(proc, pid)


def userns(adapter: Adapter, work: Path) -> str:
    proc = _run(adapter, ["/bin/cat", "/proc/self/uid_map"], work)
    fields = proc.stdout.split()
    if proc.returncode != 0 or not fields:
        return f"not measured: exit {proc.returncode}"
    return "no (host uid map)" if fields == IDENTITY_MAP else "yes (uid map " + " ".join(fields) + ")"


def memory_cap(adapter: Adapter, work: Path) -> str:
    """Launch under a memory cgroup capped at 64 MiB; a payload touching 256 MiB must die."""
    own = next(
        (
            line.split(":", 2)[2]
            for line in Path("/proc/self/cgroup").read_text().splitlines()
            if ":memory:" in line
        ),
        None,
    )
    if own is None:
        return "not measured: no cgroup v1 memory controller"
    group = Path(f"/sys/fs/cgroup/memory{own}") / f"cops-bench-{os.getpid()}-{adapter.name}"
    try:
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(MEM_CAP_MIB << 20))
    except OSError as exc:
        return f"not measured: cannot create a memory cgroup ({exc.strerror})"
    try:
        argv, env = adapter.launch(["/bench/kernel-baseline", "alloc", str(MEM_ALLOC_MIB)], work)
        enter = ["/bin/sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh", *argv]
        proc = subprocess.run(enter, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
        if proc.returncode == 0:
            return f"no: {MEM_ALLOC_MIB} MiB used under a {MEM_CAP_MIB} MiB cap (escapes the caller's cgroup)"
        return f"yes (killed, exit {proc.returncode})"
    finally:
        with contextlib.suppress(OSError):
            time.sleep(0.2)
            group.rmdir()


def binds(adapter: Adapter, work: Path) -> str:
    """A read-only bind at /cvmfs and the scratch at /srv, as the wrapper asks for them."""
    with tempfile.TemporaryDirectory(dir=work.parent) as tmp:
        cvmfs = Path(tmp)
        (cvmfs / "probe").write_text("cvmfs-probe\n")
        ro = adapter.pilot.Bind(str(cvmfs), "/cvmfs", False)
        script = (
            "cat /cvmfs/probe; echo x > /cvmfs/w 2>/dev/null && echo cvmfs-writable; echo s > /srv/scratch-ok"
        )
        proc = _run(adapter, ["/bin/sh", "-c", script], work, binds=[ro])
        seen_ro = "cvmfs-probe" in proc.stdout
        writable = "cvmfs-writable" in proc.stdout or (cvmfs / "w").exists()
    scratch_ok = (work / "scratch-ok").exists()
    cvmfs_cell = "ro enforced" if seen_ro and not writable else ("WRITABLE" if seen_ro else "not visible")
    return f"/cvmfs {cvmfs_cell}; scratch at /srv {'rw' if scratch_ok else 'NOT written'}"


def _isa(text: str) -> dict[str, set[str]]:
    """``{"cpuid": {...}, "built": {...}, "proc": {...}}`` from ``kernel cpuflags`` output."""
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        head, _, rest = line.partition(" ")
        if head in ("cpuid", "built"):
            out[head] = set(rest.split())
        elif head == "proc":
            out["proc"] = set(rest.split(":", 1)[-1].split())
    return out


def isa_inside(adapter: Adapter, work: Path) -> str:
    """Vectorisation: the x86-64 level of the CPU flags the payload sees in /proc/cpuinfo, whether
    cpuid agrees, and the code path each kernel build takes (the widest ISA it was compiled for)."""
    from computeops_grid.bench.image import best_level  # noqa: PLC0415 - image imports features' peers

    host = _isa(
        subprocess.run(
            [str(adapter.rootfs / "bench/kernel-best"), "cpuflags"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    )
    best = _isa(_run(adapter, ["/bench/kernel-best", "cpuflags"], work).stdout)
    base = _isa(_run(adapter, ["/bench/kernel-baseline", "cpuflags"], work).stdout)
    if "proc" not in best:
        return "not measured: no /proc/cpuinfo flags inside"
    level = best_level(best["proc"])
    simd = sorted(best["proc"] & set(SIMD), key=SIMD.index)
    same = "same as host" if best["proc"] == host.get("proc") else "DIFFERS from the host"
    cpuid = "cpuid agrees" if best.get("cpuid") == set(simd) else f"cpuid {sorted(best.get('cpuid', ()))}"

    def path(built: set[str]) -> str:
        widest = next((f for f in ("avx512f", "avx2", "avx", "sse4_2", "sse2") if f in built), "scalar")
        return widest.upper().replace("_", ".") if widest != "scalar" else widest

    return (
        f"/proc/cpuinfo {level} ({' '.join(simd)}; {same}); {cpuid}; "
        f"simd-best takes its {path(best.get('built', set()))} path, simd-baseline its "
        f"{path(base.get('built', set()))} path"
    )


def gpu_method(adapter: Adapter, work: Path) -> str:
    own = getattr(adapter.runtime, "gpu_method", "")  # a study adapter that puts it in a config file
    if own:
        return str(own) + ("" if adapter.pilot.gpu_devices() else " (no /dev/nvidia* on this machine)")
    plain, _ = adapter.launch(["/bin/true"], work)
    again, _ = adapter.launch(["/bin/true"], work)
    gpu, _ = adapter.launch(["/bin/true"], work, gpu=True)
    varying = set(plain) ^ set(again)  # e.g. a fresh container name per launch
    added = [a for a in gpu if a not in plain and a not in varying]
    devices = adapter.pilot.gpu_devices()
    where = "" if devices else " (no /dev/nvidia* on this machine)"
    return (" ".join(added) if added else "nothing added") + where


def formats(adapter: Adapter, work: Path) -> str:
    sif = ", .sif (declared by the adapter, no .sif here)" if adapter.runtime.supports_sif else ""
    return "rootfs dir (run)" + sif


def privilege(adapter: Adapter, work: Path) -> str:
    setuid = Path(adapter.binary).stat().st_mode & 0o4000
    return f"{adapter.runtime.mode(adapter.binary)}{', setuid binary' if setuid else ''}"


def _ns(text: str) -> dict[str, str]:
    """``{"pid": "4026531836", ...}`` from ``ls -l /proc/self/ns/...`` output."""
    return dict(re.findall(r"\b(pid|net|ipc|mnt|uts):\[(\d+)\]", text))


def host_view(adapter: Adapter, work: Path) -> str:
    """Security: does the payload share the host's PID and network namespaces, see its devices?"""
    proc = _run(
        adapter, ["/bin/sh", "-c", "ls -l /proc/self/ns/pid /proc/self/ns/net; ls /dev | wc -l"], work
    )
    inside = _ns(proc.stdout)
    if proc.returncode != 0 or len(inside) < 2:
        return f"not measured: exit {proc.returncode}"
    host = {k: os.readlink(f"/proc/self/ns/{k}").split("[")[1].rstrip("]") for k in ("pid", "net")}
    devices = proc.stdout.split()[-1]
    host_devices = len(os.listdir("/dev"))
    seen = [k for k in ("pid", "net") if inside.get(k) == host[k]]
    return (
        "host " + "+".join(seen) if seen else "own pid+net"
    ) + f"; /dev {devices} entries (host {host_devices})"


def image_writable(adapter: Adapter, work: Path) -> str:
    """Security: can the payload write into the image it runs from?"""
    probe = adapter.rootfs / "cops-write-probe"
    with contextlib.suppress(OSError):
        probe.unlink()
    proc = _run(adapter, ["/bin/sh", "-c", "echo x > /cops-write-probe && echo written"], work)
    changed = probe.exists()
    with contextlib.suppress(OSError):
        probe.unlink()
    if changed:
        return "yes: the image on disk changed"
    return "written to a copy/overlay, image unchanged" if "written" in proc.stdout else "no (read-only)"


CHECKS: dict[str, Callable[[Adapter, Path], str]] = {
    "daemon (who holds the payload)": daemon,
    "privilege mode (declared)": privilege,
    "user namespace": userns,
    "exit code": exit_code,
    "payload SIGKILL seen": signal_death,
    "SIGTERM forwarded": sigterm_forwarded,
    "memory cap of the caller honoured": memory_cap,
    "binds": binds,
    "sees the host (pid/net namespaces, /dev)": host_view,
    "payload writes the image": image_writable,
    "ISA inside (vectorisation)": isa_inside,
    "GPU method": gpu_method,
    "image formats": formats,
}


def matrix(
    adapters: dict[str, Adapter], work: Path, user: str = rootless.DEFAULT_USER
) -> list[dict[str, str]]:
    """One row per runtime; a check that crashes becomes its own error text.

    ``user``: the unprivileged account that the "works rootless" check runs the payload as.
    """
    from computeops_grid.bench import criteria  # noqa: PLC0415 - criteria builds on this module

    checks = {**CHECKS, **criteria.CHECKS}
    checks["works rootless (measured)"] = lambda adapter, w: rootless.works_rootless(adapter, w, user)
    rows = []
    for name, adapter in adapters.items():
        row = {"runtime": name}
        for check, func in checks.items():
            try:
                row[check] = func(adapter, work)
            except (OSError, subprocess.SubprocessError) as exc:
                row[check] = f"error: {exc}"[:200]
            log.info("feature %s/%s: %s", name, check, row[check])
        rows.append(row)
    return rows
