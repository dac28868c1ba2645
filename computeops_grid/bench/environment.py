"""The machine a study ran on, and how busy it was while it ran.

A background thread samples the load average every few seconds; /proc/stat and the study's
own CPU time (itself and the children it waited for) give the share of the machine's CPU
that other processes used during the run. Payloads held by a daemon (dockerd, LXD) are not
the study's children, so they count as "others": the share is an upper bound.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import statistics
import threading
from datetime import UTC, datetime
from pathlib import Path

SAMPLE_S = 5.0


def _busy_total() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / hz, sum(fields) / hz


def _own() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def machine() -> dict[str, str]:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor() or "?",
    )
    mem = next(
        (
            ln.split()[1]
            for ln in Path("/proc/meminfo").read_text().splitlines()
            if ln.startswith("MemTotal:")
        ),
        "0",
    )
    release = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            release[key] = value.strip('"')
    return {
        "host": platform.node(),
        "CPU model": cpu,
        "cpu cores": str(os.cpu_count()),
        "memory": f"{int(mem) / 1024 / 1024:.1f} GiB",
        "OS": release.get("PRETTY_NAME", "?"),
        "kernel": platform.release(),
    }


class Sampler:
    """Load average and the CPU share of other processes while the study runs."""

    def __init__(self) -> None:
        self.loads: list[float] = []
        self.started = datetime.now(UTC)
        self._stop = threading.Event()
        self._busy0, self._total0 = _busy_total()
        self._own0 = _own()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.loads.append(os.getloadavg()[0])
            self._stop.wait(SAMPLE_S)

    def finish(self) -> dict[str, str]:
        self._stop.set()
        self._thread.join(timeout=SAMPLE_S * 2)
        busy, total = _busy_total()
        own = _own() - self._own0
        span = max(total - self._total0, 1e-9)
        others = max(0.0, (busy - self._busy0) - own) / span
        loads = self.loads or [os.getloadavg()[0]]
        ended = datetime.now(UTC)
        return {
            "date (UTC)": f"{self.started:%Y-%m-%d %H:%M} to {ended:%H:%M}",
            "duration": f"{(ended - self.started).total_seconds() / 60:.1f} min",
            "load average during the run (1-min; min / median / max)": (
                f"{min(loads):.2f} / {statistics.median(loads):.2f} / {max(loads):.2f} ({len(loads)} samples)"
            ),
            "CPU used by other processes during the run": (
                f"{others:.0%} of the machine (upper bound: daemon-held payloads count as others)"
            ),
            "study's own CPU time": f"{own:.0f} s",
        }

    def start(self) -> Sampler:
        self._thread.start()
        return self
