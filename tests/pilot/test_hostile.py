"""Hostile worker nodes, for real: a broken runtime binary, a runtime that probes fine but fails to
start, user namespaces disabled, no /cvmfs, an absent image, a read-only HOME, no runtime at all.
Each gets its documented exit code and one-line message, and the fallback to the next runtime works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import CVMFS, IMAGE, PilotRunner

pytestmark = [pytest.mark.root, pytest.mark.slow]

PAYLOAD = ["--", "/bin/sh", "-c", "echo payload-ran; exit 42"]


def _fake_bin(run_pilot: PilotRunner, name: str, script: str) -> Path:
    directory = run_pilot.node.workdir()
    path = directory / name
    path.write_text(script)
    path.chmod(0o755)
    return directory


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("cops-pilot: error")]


def test_broken_runtime_binary_falls_back(run_pilot: PilotRunner) -> None:
    fake = _fake_bin(run_pilot, "ch-run", "#!/bin/sh\necho 'ch-run[1]: error: libc mismatch' >&2\nexit 1\n")
    result = run_pilot(
        ["--image", IMAGE, "--runtime", "charliecloud,bubblewrap", *PAYLOAD], path_prefix=[str(fake)]
    )
    assert result.code == 42, result.stderr
    attempts = result.report["attempts"]
    assert attempts[0]["status"] == "probe-failed"
    assert "libc mismatch" in attempts[0]["reason"]
    assert result.report["runtime"] == "bubblewrap"
    assert "charliecloud:probe-failed" in str(result.report["breadcrumbs"])


START_FAILS = """#!/bin/sh
# probes (/bin/true) pass through to the real ch-run; real payloads fail to start
for a in "$@"; do last=$a; done
if [ "$last" = /bin/true ]; then exec /usr/bin/ch-run "$@"; fi
echo 'ch-run[7]: error: cannot bind /srv: out of mounts' >&2
exit 1
"""


def test_start_failure_falls_back_then_244(run_pilot: PilotRunner) -> None:
    fake = _fake_bin(run_pilot, "ch-run", START_FAILS)
    fallback = run_pilot(
        ["--image", IMAGE, "--runtime", "charliecloud,proot", *PAYLOAD], path_prefix=[str(fake)]
    )
    assert fallback.code == 42, fallback.stderr
    assert fallback.report["attempts"][0]["status"] == "start-failed"
    assert fallback.report["runtime"] == "proot"
    alone = run_pilot(["--image", IMAGE, "--runtime", "charliecloud", *PAYLOAD], path_prefix=[str(fake)])
    assert alone.code == 244
    assert "payload-ran" not in alone.stdout
    (line,) = _error_lines(alone.stderr)
    assert "error 244" in line
    assert "out of mounts" in line
    assert alone.report["wrapper_exit_reason"] == "start-failed"


def test_user_namespaces_disabled(run_pilot: PilotRunner) -> None:
    """max_user_namespaces=0 inside a user namespace: userns runtimes fail, proot (ptrace) works."""
    order = "charliecloud,bubblewrap,runc,proot"
    result = run_pilot(["--image", IMAGE, "--runtime", order, *PAYLOAD], user="copsuser", no_userns=True)
    assert result.code == 42, result.stderr
    statuses = {a["name"]: a["status"] for a in result.report["attempts"]}
    assert statuses == {
        "charliecloud": "probe-failed",
        "bubblewrap": "probe-failed",
        "runc": "probe-failed",
        "proot": "ok",
    }
    listing = run_pilot(
        ["--list-runtimes", "--json", "--runtime", order, "--image", IMAGE], user="copsuser", no_userns=True
    )
    data = json.loads(listing.stdout)
    assert data["userns"]["enabled"] is False
    assert [r["status"] for r in data["runtimes"]] == ["probe-failed", "probe-failed", "probe-failed", "ok"]


def test_no_cvmfs(run_pilot: PilotRunner) -> None:
    result = run_pilot(["--image", IMAGE, *PAYLOAD], cvmfs=False, hide_cvmfs=True)
    assert result.code == 243
    (line,) = _error_lines(result.stderr)
    assert str(CVMFS) in line
    assert "CVMFS" in line
    assert result.report["wrapper_exit_reason"] == "image-root-absent"
    assert result.report["exit_code"] == 243


def test_image_absent(run_pilot: PilotRunner) -> None:
    result = run_pilot(["--image", "docker://example.org/team/nosuch:2", *PAYLOAD])
    assert result.code == 242
    (line,) = _error_lines(result.stderr)
    assert f"{CVMFS}/example.org/team/nosuch:2" in line
    assert result.report["wrapper_exit_reason"] == "image-not-found"


def test_read_only_home(run_pilot: PilotRunner) -> None:
    """HOME cannot be written: the probe cache moves to /tmp and the payload still runs."""
    home = "/home/copsuser"
    result = run_pilot(
        ["--image", IMAGE, "--runtime", "udocker,charliecloud", *PAYLOAD],
        user="copsuser",
        readonly=[home],
        env={"COPS_PILOT_CACHE_DIR": f"{home}/.cache/cops-pilot-ro-test"},
    )
    assert result.code == 42, result.stderr
    assert "payload-ran" in result.stdout
    assert result.report["runtime"] in ("udocker", "charliecloud")


def test_no_runtime_refuses_uncontained_then_allows(run_pilot: PilotRunner) -> None:
    refused = run_pilot(["--image", IMAGE, "--runtime", "apptainer,singularity", *PAYLOAD])
    assert refused.code == 241
    (line,) = _error_lines(refused.stderr)
    assert "apptainer:not-found" in line
    assert "payload-ran" not in refused.stdout
    allowed = run_pilot(["--image", IMAGE, "--runtime", "apptainer", "--allow-uncontained", *PAYLOAD])
    assert allowed.code == 42
    assert allowed.report["runtime"] == "uncontained"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--image", IMAGE, "--env", "NOEQUALS", "--", "true"], "--env"),
        (["--image", IMAGE, "--runtime", "dockerish", "--", "true"], "unknown runtime"),
        (["--image", IMAGE], "no payload command"),
        (["--image", IMAGE, "--bind", "relative:/x", "--", "true"], "bad bind"),
        (["--image", IMAGE, "--no-such-option", "--", "true"], "unrecognized"),
        (["--image", "docker://../etc", "--", "true"], "bad image name"),
    ],
)
def test_bad_arguments(run_pilot: PilotRunner, args: list[str], needle: str) -> None:
    result = run_pilot(args)
    assert result.code == 240
    (line,) = _error_lines(result.stderr)
    assert needle in line
    assert "Traceback" not in result.stderr
