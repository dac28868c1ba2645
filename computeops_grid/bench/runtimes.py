"""The compared systems: bare metal plus every runtime, launched by the pilot wrapper's adapters.

No launch code lives here: each runtime's argv comes from the adapter of the same name in
``worker/cops_pilot.py`` (loaded with importlib), exactly as a worker node would build it.
A runtime that cannot run gets a :class:`SystemInfo` row whose ``why`` is what the tool
found out: binary not on PATH, no adapter in the wrapper, or the runtime's own error line
from a probe run of ``/bin/true``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from computeops_grid import worker
from computeops_grid.bench.lxc import STUDY_RUNTIMES
from computeops_grid.bench.results import SystemInfo
from computeops_grid.bench.runner import System
from computeops_grid.bench.workloads import Paths
from computeops_grid.errors import CopsError

log = logging.getLogger(__name__)

BASELINE = "bare-metal"
# the runtimes the study names; extra names are accepted when the wrapper has an adapter
DEFAULT_RUNTIMES = (
    "docker",
    "podman",
    "runc",
    "crun",
    "charliecloud",
    "bubblewrap",
    "proot",
    "udocker",
    "lxc",
    "apptainer",
    "singularity",
    "shifter",
    "rkt",
    "lxd",
)
# a runtime with an OCI-CLI-compatible binary is launched by that adapter
SAME_CLI_AS = {"crun": "runc"}
# binaries that tell whether a runtime without an adapter is at least installed
BINARIES = {"lxc": "lxc-execute", "lxd": "lxd", "shifter": "shifter", "rkt": "rkt", "docker": "dockerd"}
# what the study found about runtimes that cannot be installed here (apt lists of bookworm, trixie,
# sid and experimental, main/contrib/non-free, looked up 2026-12-06 with the private-list method of
# shared/notes/apptainer-htcondor-from-debian.md)
NOT_PACKAGED = {
    "rkt": "no Debian package in bookworm, trixie, sid or experimental; upstream rkt ended in 2020 "
    "(github.com/rkt/rkt archived, read-only)",
    "shifter": "no Debian package in bookworm, trixie, sid or experimental; Shifter is built from "
    "source by the HPC centres that run it, with its image gateway",
}
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"
CONTAINER_SCRATCH = "/srv"  # the wrapper binds the job's work directory there
PROBE_TIMEOUT = 60.0
VERSION = re.compile(r"\d+\.\d+(\.\d+)?")
# where a daemon-based runtime's client finds its daemon: the study may have started its own
DAEMON_ENV = ("DOCKER_HOST", "LXD_DIR")


class RuntimeSetupError(CopsError):
    """The pilot wrapper cannot be loaded."""


@dataclass
class Adapter:
    """One wrapper adapter bound to a binary and the bench image."""

    name: str
    runtime: Any  # the wrapper's Runtime instance
    binary: str
    pilot: ModuleType
    rootfs: Path
    private: Path  # the adapter's own files (bundles, env files), 0700

    def launch(
        self, argv: list[str], workdir: Path, *, binds: list[Any] | None = None, gpu: bool = False
    ) -> tuple[list[str], dict[str, str] | None]:
        p = self.pilot
        image = p.Image(str(self.rootfs), str(self.rootfs), "dir")
        env = {"PATH": p.DEFAULT_PATH, "HOME": p.CONTAINER_WORKDIR}
        launch = p.Launch(image, argv, str(workdir), binds or [], env, gpu, str(self.private))
        refusal = self.runtime.refuse(launch)
        if refusal:
            raise OSError(f"{self.name} adapter refuses: {refusal}")
        out_argv, out_env = self.runtime.build(launch, self.binary)
        env = dict(out_env)
        for key in DAEMON_ENV:
            if key in os.environ:
                env.setdefault(key, os.environ[key])
        return list(out_argv), env

    def system(self) -> System:
        def with_gpu(argv: list[str], workdir: Path) -> tuple[list[str], dict[str, str] | None]:
            return self.launch(argv, workdir, gpu=True)

        return System(self.name, self.launch, Paths("", CONTAINER_SCRATCH), gpu_wrap=with_gpu)


def load_pilot() -> ModuleType:
    """The pilot wrapper as a module (it is a single stdlib file, not a package)."""
    try:
        path = worker.pilot()
    except FileNotFoundError as exc:
        raise RuntimeSetupError(str(exc), hint="reinstall cops-grid: the wrapper ships with it") from exc
    spec = importlib.util.spec_from_file_location("cops_pilot", path)
    if spec is None or spec.loader is None:
        raise RuntimeSetupError(f"cannot load the pilot wrapper {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("cops_pilot", module)
    spec.loader.exec_module(module)
    return module


def bare_metal(rootfs: Path, scratch: Path) -> tuple[System, SystemInfo]:
    system = System(BASELINE, lambda argv, _s: (argv, None), Paths(str(rootfs), str(scratch)))
    return system, SystemInfo(BASELINE, True, version=os.uname().release, detail="no container")


def version_text(binary: str, private: Path) -> str:
    """What ``binary --version`` prints (stdout and stderr), or why it could not run."""
    argv = [binary, "--version"]
    if Path(binary).name == "udocker":
        argv.insert(1, "--allow-root")
    env = {**os.environ, "USER": os.environ.get("USER", "root"), "UDOCKER_DIR": str(private / "udocker-v")}
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"? ({exc})"
    return proc.stdout + proc.stderr


def version_of(binary: str, private: Path) -> str:
    """The version number the binary prints (banners and root refusals are skipped)."""
    text = version_text(binary, private)
    if text.startswith("? ("):
        return text
    match = VERSION.search(text)
    return match.group(0) if match else "?"


def same_program(name: str, binary: str, private: Path, known: set[str]) -> str:
    """Where ``name`` is another program's compatibility name, what the binary says it is
    (``singularity --version`` on today's grid sites: ``apptainer version 1.4.5``); else ""."""
    line = next((ln.strip() for ln in version_text(binary, private).splitlines() if ln.strip()), "")
    program = line.split()[0].lower() if line else ""
    if not program or name in program or program not in known:  # known: the wrapper's runtimes
        return ""
    return f"the {program} program: `{Path(binary).name} --version` says {line!r}"


def _path_env() -> str:
    return os.environ.get("PATH", "") + ":" + SBIN_PATH


def locate(pilot: ModuleType, name: str) -> tuple[Any | None, str | None, str]:
    """(adapter, binary, why-not) for ``name``; why-not is empty when both were found."""
    adapter_name = SAME_CLI_AS.get(name, name)
    if adapter_name not in pilot.RUNTIMES and name in STUDY_RUNTIMES:
        study = STUDY_RUNTIMES[name]()  # the study's own adapter (bench/lxc.py)
        binary = study.locate(_path_env())
        return study, binary, "" if binary else f"{'/'.join(study.binaries)} not found on PATH"
    if adapter_name not in pilot.RUNTIMES:
        binary = shutil.which(BINARIES.get(name, name), path=_path_env())
        found = f"{binary} is installed" if binary else f"{BINARIES.get(name, name)} not found on PATH"
        if name in NOT_PACKAGED and not binary:
            found += f" ({NOT_PACKAGED[name]})"
        return None, binary, f"no {name} adapter in the pilot wrapper; {found}"
    runtime = pilot.runtime(adapter_name)
    if name in SAME_CLI_AS:
        binary = shutil.which(name, path=_path_env())
        runtime.binaries = (name,)
    else:
        binary = runtime.locate(_path_env())
    if binary is None:
        return runtime, None, f"{'/'.join(runtime.binaries)} not found on PATH"
    return runtime, binary, ""


def probe(adapter: Adapter, workdir: Path) -> str:
    """Run ``/bin/true`` through the adapter; the runtime's own error line if it fails."""
    try:
        argv, env = adapter.launch(["/bin/true"], workdir)
        proc = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if proc.returncode == 0:
        return ""
    tail = proc.stderr.strip()
    line = adapter.runtime.start_failure(proc.returncode, tail) or (tail.splitlines() or [""])[-1]
    return f"probe of /bin/true exited {proc.returncode}: {line.strip()[:300]}"


def discover(
    names: list[str], rootfs: Path, scratch: Path, work: Path
) -> tuple[list[System], list[SystemInfo], dict[str, Adapter]]:
    """Bare metal first, then each named runtime that probes OK; a why-row for the others."""
    pilot = load_pilot()
    base, base_info = bare_metal(rootfs, scratch)
    systems, infos, adapters = [base], [base_info], {}
    for name in names:
        runtime, binary, why = locate(pilot, name)
        if why or runtime is None or binary is None:
            infos.append(SystemInfo(name, False, why=why))
            continue
        private = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
        adapter = Adapter(name, runtime, binary, pilot, rootfs, private)
        failure = probe(adapter, scratch)
        version = version_of(binary, private)
        if failure:
            infos.append(SystemInfo(name, False, why=failure, version=version))
            continue
        detail = (
            f"{binary} via the pilot's {SAME_CLI_AS.get(name, name)} adapter, mode {runtime.mode(binary)}"
        )
        if same := same_program(name, binary, private, set(pilot.RUNTIMES)):
            detail += f"; {same}"
        infos.append(SystemInfo(name, True, version=version, detail=detail))
        systems.append(adapter.system())
        adapters[name] = adapter
    return systems, infos, adapters
