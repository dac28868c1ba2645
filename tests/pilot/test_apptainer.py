"""The real Apptainer (Debian sid's 1.4, from its cached root: ``apptainer_bin``) under the real
wrapper, as on a worker node: the payload matrix from the CVMFS stand-in as root and as an
unprivileged user (user-namespace mode), a ``.sif`` built with ``apptainer build``, exit codes
0/42/killed, ``--nv`` on a machine without GPU, ``singularity`` as the same program, Apptainer
found on CVMFS (``/cvmfs/oasis.opensciencegrid.org/mis/apptainer``), and Apptainer picked first
by the wrapper's default order, also for a local ``cops-grid submit``."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, Cli

from .conftest import CVMFS, IMAGE, IMAGE_BARE, PilotResult, PilotRunner
from .test_runtimes import PAYLOAD, _find_pid

pytestmark = [pytest.mark.root, pytest.mark.slow]

OASIS = Path("/cvmfs/oasis.opensciencegrid.org")
OASIS_APPTAINER = OASIS / "mis" / "apptainer" / "current" / "bin" / "apptainer"


def run(run_pilot: PilotRunner, bindir: Path, args: list[str], **options: object) -> PilotResult:
    return run_pilot(args, path_prefix=[str(bindir)], **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("user", ["root", "copsuser"])
@pytest.mark.parametrize("image", [IMAGE, IMAGE_BARE])
def test_payload_through_apptainer(
    run_pilot: PilotRunner, apptainer_bin: Path, user: str, image: str
) -> None:
    """Binds (/srv, a read-only bind, /cvmfs read-only), clean environment, working directory,
    image from the CVMFS stand-in, exit code; the bare image lacks /srv and /cvmfs."""
    data = run_pilot.node.workdir(user)
    (data / "in.txt").write_text("bound-input\n")
    payload = PAYLOAD.replace("/data", "/home") + "; (echo x > /cvmfs/w) 2>/dev/null || echo cvmfs:ro"
    result = run(
        run_pilot, apptainer_bin,
        ["--image", image, "--runtime", "apptainer", "--env", "FOO=bar baz", "--pass-env", "PASSED",
         "--bind", f"{data}:/home:ro", "--", "/bin/sh", "-c", payload],
        user=user, env={"PASSED": "yes", "HOST_ONLY": "secret"},
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert result.code == 42, result.stderr
    for expected in ("out:bar baz", "pwd:/srv", "home:/srv", "pass:yes", "leak:", "cops-test-image",
                     "unpacked.cern.ch", "bound-input", "bind:ro"):  # fmt: skip
        assert expected in lines, (expected, result.stdout, result.stderr)
    assert (result.workdir / "result.txt").read_text() == "made\n"
    report = result.report
    assert (report["runtime"], report["exit_code"]) == ("apptainer", 42)
    assert report["wrapper_exit_reason"] == "payload"
    assert report["mode"] == ("root" if user == "root" else "userns")
    assert report["argv"][0] == str(apptainer_bin / "apptainer")
    assert str(report["image_path"]).startswith(f"{CVMFS}/.flat/")


def test_unprivileged_payload_runs_in_a_user_namespace(run_pilot: PilotRunner, apptainer_bin: Path) -> None:
    result = run(
        run_pilot, apptainer_bin,
        ["--image", IMAGE, "--runtime", "apptainer", "--", "/bin/sh", "-c", "id -u; cat /proc/self/uid_map"],
        user="copsuser",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    uid, *uid_map = result.stdout.split()
    assert uid != "0"
    assert uid_map[:3] == [uid, uid, "1"]  # Apptainer's own user namespace, the user mapped to itself


@pytest.fixture(scope="module")
def sif(run_pilot: PilotRunner, apptainer_bin: Path) -> Path:
    """The test image as a .sif, built by ``apptainer build`` (mksquashfs of the sid root)."""
    path = run_pilot.node.base / "busybox.sif"
    proc = subprocess.run(
        [str(apptainer_bin / "apptainer"), "build", "--force", str(path), str(run_pilot.node.rootfs)],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "APPTAINER_CACHEDIR": str(run_pilot.node.base / "apptainer-cache")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    path.chmod(0o644)
    return path


@pytest.mark.parametrize("user", ["root", "copsuser"])
def test_sif_image(run_pilot: PilotRunner, apptainer_bin: Path, sif: Path, user: str) -> None:
    """Root mounts the SIF's squashfs (loop device); an unprivileged user without squashfuse
    gets it converted to a temporary sandbox. Either way the payload runs from it."""
    result = run(
        run_pilot, apptainer_bin,
        ["--image", str(sif), "--", "/bin/sh", "-c", "cat /etc/image-marker; echo sif > /srv/out; exit 42"],
        user=user, cvmfs=False,
    )  # fmt: skip
    assert result.code == 42, result.stderr
    assert "cops-test-image" in result.stdout
    assert (result.workdir / "out").read_text() == "sif\n"
    assert (result.report["runtime"], result.report["image_path"]) == ("apptainer", str(sif))


def test_rootfs_directory_exit_zero(run_pilot: PilotRunner, apptainer_bin: Path) -> None:
    rootfs = str(run_pilot.node.rootfs)
    result = run(run_pilot, apptainer_bin, ["--image", rootfs, "--runtime", "apptainer", "--", "/bin/true"],
                 cvmfs=False)  # fmt: skip
    assert result.code == 0, result.stderr
    assert (result.report["exit_code"], result.report["image_path"]) == (0, rootfs)


@pytest.mark.parametrize("user", ["root", "copsuser"])
def test_payload_killed_by_signal(run_pilot: PilotRunner, apptainer_bin: Path, user: str) -> None:
    marker = f"{91 + (user != 'root')}.{os.getpid() % 1000}"
    argv, env, workdir = run_pilot.command(
        ["--image", IMAGE, "--runtime", "apptainer", "--", "sleep", marker],
        user=user, path_prefix=[str(apptainer_bin)],
    )  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        os.kill(_find_pid(marker, time.monotonic() + 60), signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGKILL, stderr
    assert '"signal": 9' in (workdir / "report.json").read_text()


def test_gpu_flag_without_gpu(run_pilot: PilotRunner, apptainer_bin: Path) -> None:
    """``--gpu`` adds ``--nv``; with no NVIDIA driver here Apptainer warns and runs the payload."""
    args = ["--image", IMAGE, "--runtime", "apptainer", "--gpu", "--", "/bin/sh", "-c", "exit 42"]
    result = run(run_pilot, apptainer_bin, args)
    assert result.code == 42, result.stderr
    assert "--nv" in result.report["argv"]


def test_singularity_is_the_same_program(run_pilot: PilotRunner, apptainer_bin: Path) -> None:
    result = run(run_pilot, apptainer_bin,
                 ["--image", IMAGE, "--runtime", "singularity", "--env", "FOO=via-singularityenv", "--",
                  "/bin/sh", "-c", "echo $FOO; exit 42"])  # fmt: skip
    assert result.code == 42, result.stderr
    assert "via-singularityenv" in result.stdout  # SINGULARITYENV_FOO, honoured by Apptainer
    assert result.report["runtime"] == "singularity"


def test_default_order_takes_apptainer_first(run_pilot: PilotRunner, apptainer_bin: Path) -> None:
    result = run(run_pilot, apptainer_bin, ["--image", IMAGE, "--", "/bin/sh", "-c", "exit 42"])
    assert result.code == 42, result.stderr
    assert result.report["runtime"] == "apptainer"
    assert result.report["attempts"][0]["name"] == "apptainer"
    assert result.report["attempts"][0]["status"] == "ok"


@pytest.fixture(scope="module")
def oasis(run_pilot: PilotRunner, apptainer_bin: Path) -> Path:
    """An oasis.opensciencegrid.org stand-in (squashfs) with Apptainer where OSG publishes it."""
    tree = run_pilot.node.base / "oasis"
    target = tree / OASIS_APPTAINER.relative_to(OASIS)
    target.parent.mkdir(parents=True)
    target.write_bytes((apptainer_bin / "apptainer").read_bytes())
    target.chmod(0o755)
    image = run_pilot.node.base / "oasis.squashfs"
    subprocess.run(["mksquashfs", str(tree), str(image), "-noappend", "-quiet", "-all-root"],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    OASIS.mkdir(parents=True, exist_ok=True)  # only the empty mount point, as for unpacked.cern.ch
    return image


@pytest.mark.parametrize("user", ["root", "copsuser"])
def test_apptainer_found_on_cvmfs(run_pilot: PilotRunner, oasis: Path, user: str) -> None:
    """Not on PATH: the wrapper finds Apptainer at its OSG location on CVMFS."""
    argv, env, workdir = run_pilot.command(["--image", IMAGE, "--", "/bin/sh", "-c", "exit 42"], user=user)
    at = argv.index("--squashfs")
    argv[at:at] = ["--also-squashfs", f"{oasis}:{OASIS}"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 42, proc.stderr
    report = (workdir / "report.json").read_text()
    assert '"runtime": "apptainer"' in report
    assert f'"binary": "{OASIS_APPTAINER}"' in report


def test_local_submit_runs_under_apptainer(
    cli: Cli, apptainer_bin: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``cops-grid submit etc/examples/hello.yaml --wait`` with Apptainer on PATH: the local
    backend's wrapper picks it first and its report says so."""
    monkeypatch.setenv("PATH", f"{apptainer_bin}:{os.environ['PATH']}")
    res = cli("submit", str(EXAMPLES / "hello.yaml"), "--wait", timeout=180)
    assert res.code == 0, res.stderr
    assert "Hello from Linux in a container, job hello" in res.stdout + res.stderr
    (job,) = cli("list", "--json").json()  # type: ignore[misc]
    report = cli("get", job["id"], "-o", str(tmp_path / "out"))
    assert report.code == 0, report.stderr
    text = (tmp_path / "out" / "cops-report.json").read_text()
    assert '"runtime": "apptainer"' in text
