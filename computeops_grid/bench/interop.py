"""Interoperability experiment: develop with Docker, deploy with Singularity?

One Dockerfile (a busybox image with a small payload that prints checksums of its own files,
the result of the bench kernel and the image's environment) is

1. built with buildah (``recipes.build``, offline) into an OCI archive (and a Docker archive);
2. published unpacked with ``cops-grid image publish``;
3. converted to a Singularity definition and back with ``cops-grid image convert`` (the third
   conversion must give the first definition again), and the converted Dockerfile built and
   published too;
4. run under every runtime that works here: through the pilot wrapper's adapters on both
   unpacked images, and with the runtimes' own commands from the archives (``docker load`` +
   ``docker run``, ``podman run oci-archive:``, ``apptainer build`` of a SIF from the OCI archive
   and from the converted definition, then ``apptainer run``);
5. compared: the output of every run, its checksum, and the lines that differ from the
   reference run (Docker's own, else the first that ran).

Every command is recorded with its exit status and time; each runtime's path from the Docker
image to a running payload (commands, conversion) feeds the study's ease-of-use columns.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from computeops_grid.bench.docker_setup import docker_for_study
from computeops_grid.bench.image import _busybox, compile_kernel
from computeops_grid.bench.lxc import lxd_for_study
from computeops_grid.bench.runtimes import discover

log = logging.getLogger(__name__)

TIMEOUT = 300.0
REPO_NAME = "docker://interop.local/cops/interop"
DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
COPY busybox /bin/sh
RUN /bin/busybox --install -s /bin; \\
    mkdir -p /srv /proc /dev /sys /tmp /cvmfs /etc /root /home /run /var/tmp /opt/interop; \\
    echo root:x:0:0:root:/root:/bin/sh > /etc/passwd; echo root:x:0: > /etc/group
COPY kernel data.bin payload.sh /opt/interop/
ENV INTEROP_GREETING=hello-from-docker
CMD ["/bin/sh", "/opt/interop/payload.sh"]
"""
PAYLOAD = """\
echo "data $(sha256sum /opt/interop/data.bin | cut -d' ' -f1)"
echo "kernel $(/opt/interop/kernel scalar 1000000 | sed 's/seconds=[0-9.]* //')"
cd /opt/interop && ls -ln | sed 1d | awk '{print "file", $1, $5, $9}'
echo "busybox applets $(ls /bin | wc -l)"
echo "greeting ${INTEROP_GREETING:-unset}"
echo "arch $(uname -m)"
"""
COMMAND = ["/bin/sh", "/opt/interop/payload.sh"]
# what each runtime needs between the Docker image and a run (what the experiment did)
CONVERSION = {
    "docker": "none: loads the Docker archive",
    "podman": "none: runs the OCI archive",
    "apptainer": "a SIF (apptainer build from the OCI archive or the converted definition); "
    "the unpacked directory runs as is",
    "lxd": "an LXD image: metadata.yaml + rootfs tarball, lxc image import",
}
UNPACKED = "none beyond unpacking: runs the unpacked directory (cops-grid image publish)"


@dataclass
class Step:
    what: str
    argv: list[str]
    rc: int
    seconds: float
    tail: str = ""


@dataclass
class Run:
    runtime: str
    image: str  # docker | roundtrip | sif-from-oci | sif-from-def
    how: str  # wrapper adapter | native
    commands: list[str]
    ok: bool
    output: str = ""
    checksum: str = ""
    error: str = ""
    differs: list[str] = field(default_factory=list)


@dataclass
class Experiment:
    steps: list[Step] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    fixed_point: bool = False
    definition: str = ""
    dockerfile_back: str = ""
    notes: list[str] = field(default_factory=list)

    def step(
        self, what: str, argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> Step:
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
            )
            rc, tail = proc.returncode, (proc.stderr.strip() or proc.stdout.strip())[-400:]
            out = proc.stdout
        except (OSError, subprocess.SubprocessError) as exc:
            rc, tail, out = -1, str(exc)[:400], ""
        step = Step(what, argv, rc, round(time.monotonic() - t0, 3), tail if rc else "")
        self.steps.append(step)
        self.last_out = out
        return step

    last_out: str = ""  # stdout of the latest step (not saved)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("last_out", None)
        return data


def _cli() -> list[str]:
    """The cops-grid command of this installation (next to the running interpreter, else on PATH)."""
    beside = Path(sys.executable).parent / "cops-grid"
    return [str(beside)] if beside.exists() else [shutil.which("cops-grid") or "cops-grid"]


def _context(ctx: Path) -> None:
    ctx.mkdir(parents=True)
    shutil.copy2(_busybox(), ctx / "busybox")
    compile_kernel(ctx / "kernel", "x86-64")
    (ctx / "data.bin").write_bytes(hashlib.sha256(b"cops-grid interop").digest() * 2048)
    (ctx / "payload.sh").write_text(PAYLOAD)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    for path in (ctx, *ctx.iterdir()):
        path.chmod(0o755)


def _build(exp: Experiment, dockerfile: Path, tag: str, work: Path) -> tuple[Path, Path] | None:
    storage = ["--root", str(work / "storage"), "--runroot", str(work / "run")]
    oci, docker = work / f"{tag}.oci.tar", work / f"{tag}.docker.tar"
    ref = f"localhost/cops-interop:{tag}"
    build = ["buildah", *storage, "build", "--pull-never", "--isolation", "chroot", "-f", str(dockerfile)]
    if exp.step(f"buildah build ({tag})", [*build, "-t", ref, str(dockerfile.parent)]).rc:
        return None
    exp.step(
        f"buildah push oci-archive ({tag})",
        ["buildah", *storage, "push", "--quiet", ref, f"oci-archive:{oci}:{tag}"],
    )
    exp.step(
        f"buildah push docker-archive ({tag})",
        ["buildah", *storage, "push", "--quiet", ref, f"docker-archive:{docker}:{ref}"],
    )
    return oci, docker


def _publish(exp: Experiment, oci: Path, tag: str, repo: Path) -> Path | None:
    argv = [*_cli(), "image", "publish", f"oci-archive:{oci}", "--name", f"{REPO_NAME}:{tag}"]
    if exp.step(f"cops-grid image publish ({tag})", [*argv, "--repo-root", str(repo), "--json"]).rc:
        return None
    return (repo / f"interop.local/cops/interop:{tag}").resolve()


def _convert(exp: Experiment, ctx: Path) -> Path | None:
    conv = [*_cli(), "image", "convert"]
    steps = [
        ("Dockerfile", "singularity", "interop.def"),
        ("interop.def", "docker", "Dockerfile.back"),
        ("Dockerfile.back", "singularity", "interop2.def"),
    ]
    for src, to, dst in steps:
        if exp.step(
            f"cops-grid image convert {src} --to {to}", [*conv, src, "--to", to, "-o", dst], cwd=ctx
        ).rc:
            return None
    exp.definition = (ctx / "interop.def").read_text()
    exp.dockerfile_back = (ctx / "Dockerfile.back").read_text()
    exp.fixed_point = exp.definition == (ctx / "interop2.def").read_text()
    back = ctx.parent / "back"
    shutil.copytree(ctx, back)
    (back / "Dockerfile").unlink()
    (back / "Dockerfile.back").rename(back / "Dockerfile")
    return back / "Dockerfile"


def _record(exp: Experiment, run: Run, step: Step) -> None:
    run.ok = step.rc == 0
    run.output = exp.last_out if run.ok else ""
    run.error = "" if run.ok else f"exit {step.rc}: {step.tail[-300:]}"
    run.checksum = hashlib.sha256(run.output.encode()).hexdigest()[:16] if run.ok else ""
    exp.runs.append(run)


def _adapter_runs(exp: Experiment, runtimes: list[str], rootfs: Path, image: str, work: Path) -> None:
    scratch = work / f"scratch-{image}"
    scratch.mkdir(mode=0o755)
    with lxd_for_study("lxd" in runtimes, rootfs) as lxd_note:
        if lxd_note and "did not start" in lxd_note:
            exp.notes.append(lxd_note)
        _systems, infos, adapters = discover(runtimes, rootfs, scratch, work)
        for info in infos:
            if not info.available and info.name in runtimes and image == "docker":
                exp.notes.append(f"{info.name}: not run ({info.why[:200]})")
        for name, adapter in adapters.items():
            try:
                argv, env = adapter.launch(COMMAND, scratch)
            except OSError as exc:
                exp.runs.append(Run(name, image, "wrapper adapter", [], False, error=str(exc)[:300]))
                continue
            step = exp.step(f"{name} run ({image})", argv, env=env)
            written = sorted(p.name for p in adapter.private.rglob("*") if p.is_file())
            cmds = ["cops-grid image publish (unpacks the image)"]
            if name == "lxd":
                cmds += ["LXD image tarball + lxc image import", "lxc init + config device add + start"]
            cmds.append(f"{Path(argv[0]).name} (argv from the wrapper's {name} adapter)")
            if written:
                cmds[-1] += f"; the adapter wrote {len(written)} file(s): {', '.join(written[:3])}"
            _record(exp, Run(name, image, "wrapper adapter", cmds, False), step)


def _native_runs(
    exp: Experiment, runtimes: list[str], archives: tuple[Path, Path], ctx: Path, work: Path
) -> None:
    oci, docker_tar = archives
    if "docker" in runtimes and shutil.which("docker"):
        _docker_native(exp, docker_tar)
    if "podman" in runtimes and shutil.which("podman"):
        runroot = tempfile.mkdtemp(prefix="cpr-")  # podman: a runroot of at most 50 characters
        store = ["--root", str(work / "podman"), "--runroot", runroot]
        flags = ["--network", "none", "--runtime", "runc", "--ulimit", "nofile=20000:20000"]
        flags += ["--ulimit", "nproc=4096:4096"]  # this machine's limits (shared/notes/runtimes-...)
        argv = ["podman", *store, "run", "--rm", *flags, f"oci-archive:{oci}"]
        _record(
            exp,
            Run("podman", "docker", "native", ["podman run --rm oci-archive:image.tar"], False),
            exp.step("podman run", argv),
        )
        shutil.rmtree(runroot, ignore_errors=True)
    apptainer = shutil.which("apptainer")
    if apptainer and ({"apptainer", "singularity"} & set(runtimes)):
        _apptainer_runs(exp, apptainer, oci, ctx, work)


def _docker_native(exp: Experiment, docker_tar: Path) -> None:
    """``docker load`` + ``docker run`` of the Docker archive (the image's CMD and ENV apply)."""
    ref = "localhost/cops-interop:docker"
    run = Run("docker", "docker", "native", ["docker load -i image.tar", "docker run --rm IMAGE"], False)
    load = exp.step("docker load", ["docker", "load", "-i", str(docker_tar)])
    if load.rc:
        run.error = f"docker load: {load.tail[-300:]}"
        exp.runs.append(run)
        return
    _record(exp, run, exp.step("docker run", ["docker", "run", "--rm", "--network", "none", ref]))
    exp.step("docker rmi", ["docker", "rmi", "-f", ref])


def _apptainer_runs(exp: Experiment, apptainer: str, oci: Path, ctx: Path, work: Path) -> None:
    sif = work / "from-oci.sif"
    build = exp.step(
        "apptainer build SIF from the OCI archive",
        [apptainer, "build", str(sif), f"oci-archive:{oci}"],
        cwd=work,
    )
    cmds = ["apptainer build image.sif oci-archive:image.tar", "apptainer run image.sif"]
    if build.rc:
        exp.runs.append(Run("apptainer", "sif-from-oci", "native", cmds, False, error=build.tail[-300:]))
    else:
        _record(
            exp,
            Run("apptainer", "sif-from-oci", "native", cmds, False),
            exp.step("apptainer run (OCI)", [apptainer, "run", str(sif)]),
        )
    # the definition converted from the Dockerfile: %post needs a user namespace here (as root,
    # Apptainer asks for CAP_SYS_RESOURCE, which this sandbox's bounding set lacks): build as nobody
    build_dir = Path(tempfile.mkdtemp(prefix="cops-interop-def-"))  # in /tmp: nobody must reach it
    for name in ("interop.def", "busybox", "kernel", "data.bin", "payload.sh"):
        shutil.copy2(ctx / name, build_dir / name)
    for path in (build_dir, *build_dir.iterdir()):
        os.chmod(path, 0o777 if path.is_dir() else 0o755)
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(build_dir)}
    def_sif = build_dir / "from-def.sif"
    argv = [*drop, apptainer, "build", "--fakeroot", str(def_sif), "interop.def"]
    build = exp.step(
        "apptainer build --fakeroot SIF from the converted definition (as nobody)",
        argv,
        cwd=build_dir,
        env=env,
    )
    cmds = [
        "cops-grid image convert Dockerfile --to singularity",
        "apptainer build --fakeroot image.sif interop.def",
        "apptainer run image.sif",
    ]
    if build.rc:
        exp.runs.append(Run("apptainer", "sif-from-def", "native", cmds, False, error=build.tail[-300:]))
    else:
        _record(
            exp,
            Run("apptainer", "sif-from-def", "native", cmds, False),
            exp.step("apptainer run (definition)", [apptainer, "run", str(def_sif)]),
        )
    shutil.rmtree(build_dir, ignore_errors=True)


def compare(runs: list[Run]) -> str:
    """Set each run's ``differs`` (its lines not in the reference's output); the reference's name."""
    ok = [r for r in runs if r.ok]
    if not ok:
        return ""
    ref = next((r for r in ok if r.runtime == "docker" and r.how == "native"), ok[0])
    ref_lines = ref.output.splitlines()
    for run in ok:
        lines = run.output.splitlines()
        run.differs = [f"- {ln}" for ln in ref_lines if ln not in lines] + [
            f"+ {ln}" for ln in lines if ln not in ref_lines
        ]
    return f"{ref.runtime} ({ref.how}, {ref.image})"


@contextlib.contextmanager
def _workdir(parent: Path) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="interop-", dir=parent))
    work.chmod(0o755)
    try:
        yield work
    finally:  # a runtime that failed half-way (podman) may leave its overlay mounted there
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for target in reversed([m for m in mounts if m.startswith(f"{work}/")]):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


def run_experiment(parent: Path, runtimes: list[str]) -> dict[str, Any]:
    """The whole experiment in a temporary directory under ``parent``; the result as JSON data."""
    exp = Experiment()
    started = time.monotonic()
    with _workdir(parent) as work:
        ctx = work / "context"
        _context(ctx)
        built = _build(exp, ctx / "Dockerfile", "docker", work)
        back_file = _convert(exp, ctx)
        images: dict[str, Path] = {}
        if built:
            published = _publish(exp, built[0], "docker", work / "repo")
            if published:
                images["docker"] = published
        if back_file is not None:
            back = _build(exp, back_file, "roundtrip", work)
            if back:
                published = _publish(exp, back[0], "roundtrip", work / "repo")
                if published:
                    images["roundtrip"] = published
        with docker_for_study("docker" in runtimes) as note:
            if "did not start" in note:
                exp.notes.append(note)
            for image, rootfs in images.items():
                _adapter_runs(exp, runtimes, rootfs, image, work)
            if built:
                _native_runs(exp, runtimes, built, ctx, work)
    reference = compare(exp.runs)
    data = exp.as_dict()
    data.update(reference=reference, seconds=round(time.monotonic() - started, 1), dockerfile=DOCKERFILE)
    data["answer"] = answer(exp, reference)
    return data


def answer(exp: Experiment, reference: str) -> str:
    ok = [r for r in exp.runs if r.ok]
    failed = [r for r in exp.runs if not r.ok]
    same = [r for r in ok if not r.differs]
    sif = [r for r in ok if r.image.startswith("sif")]
    parts = [
        f"{len(ok)} of {len(exp.runs)} runs of the one Docker image worked; {len(same)} printed exactly the "
        f"output of the reference run ({reference or 'none'})."
    ]
    if sif:
        parts.append(
            "Apptainer ran the Docker-built image as a SIF ("
            + ", ".join(f"{r.image}: {'identical' if not r.differs else 'differs'}" for r in sif)
            + ")."
        )
    diff = sorted({d for r in ok for d in r.differs})
    if diff:
        parts.append("What differs: " + "; ".join(diff[:8]) + (" …" if len(diff) > 8 else "") + ".")
    parts.append(
        "The Dockerfile -> definition -> Dockerfile -> definition conversion "
        + (
            "reaches a fixed point (the third text is the first)."
            if exp.fixed_point
            else "does NOT reach a fixed point."
        )
    )
    if failed:
        parts.append(
            "Failed: " + "; ".join(f"{r.runtime} ({r.image}): {r.error[:120]}" for r in failed) + "."
        )
    return " ".join(parts)


def ease_columns(data: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per runtime: the shortest path the experiment ran from the Docker image to the payload."""
    best: dict[str, dict[str, Any]] = {}
    for run in data.get("runs", []):
        if not run["ok"] or run["image"] == "roundtrip":
            continue
        name = (
            "apptainer"
            if run["runtime"] in ("apptainer", "singularity") and run["how"] == "native"
            else run["runtime"]
        )
        if name not in best or len(run["commands"]) < len(best[name]["commands"]):
            best[name] = run
    out = {}
    for name, run in best.items():
        same = (
            "same output as the reference" if not run["differs"] else f"{len(run['differs'])} line(s) differ"
        )
        path = f"{len(run['commands'])}: {'; '.join(run['commands'])} ({same})"
        out[name] = {
            "from a Docker image to a running payload (measured)": path,
            "image conversion needed": CONVERSION.get(name, UNPACKED),
        }
    if "apptainer" in out and "singularity" not in out:
        out["singularity"] = out["apptainer"]
    return out
