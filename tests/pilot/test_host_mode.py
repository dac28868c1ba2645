"""Host mode (``--image host:``): the payload runs on the node itself, the explicit "told to" case
of "never uncontained". Real payloads through the real wrapper: working directory and HOME, clean
environment, report, exit codes (0, 42, a signal, command not found), signal forwarding, dry-run,
and the refusals (--bind, --require-container)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from computeops_grid import worker

from .conftest import PYTHON, PilotRunner

HOST_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": HOST_PATH,
        "HOME": "/root",
        "COPS_PILOT_CONFIG": os.devnull,
        "COPS_PILOT_CACHE_DIR": str(tmp_path / "cache"),
    }
    env.update(extra)
    return env


def _pilot(
    tmp_path: Path, args: Sequence[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    workdir = tmp_path / "wd"
    workdir.mkdir(exist_ok=True)
    argv = [PYTHON, str(worker.pilot()), "--workdir", str(workdir), "--report", "r.json", *args]
    return subprocess.run(
        argv, env=env or _env(tmp_path), check=False, capture_output=True, text=True, timeout=60
    )


def _report(tmp_path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((tmp_path / "wd" / "r.json").read_text())
    return data


def test_host_payload_sees_workdir_home_and_clean_env(tmp_path: Path) -> None:
    script = "echo pwd:$(pwd); echo home:$HOME; echo foo:$FOO; echo pass:$PASSED; echo leak:$SECRET; echo path:$PATH; echo x > out.txt; exit 42"  # noqa: E501
    proc = _pilot(
        tmp_path,
        ["--image", "host:", "--env", "FOO=bar baz", "--pass-env", "PASSED", "--", "/bin/sh", "-c", script],
        _env(tmp_path, PASSED="yes", SECRET="host-only"),
    )
    workdir = tmp_path / "wd"
    assert proc.returncode == 42, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"pwd:{workdir}" in lines
    assert f"home:{workdir}" in lines  # no /srv on the host: HOME is the scratch itself
    assert "foo:bar baz" in lines
    assert "pass:yes" in lines
    assert "leak:" in lines  # only the pass-through list leaves the node's environment
    assert f"path:{HOST_PATH}" in lines  # the node's own PATH
    assert (workdir / "out.txt").read_text() == "x\n"
    report = _report(tmp_path)
    assert report["runtime"] == "host"
    assert report["exit_code"] == 42
    assert report["wrapper_exit_reason"] == "payload"
    assert report["image_path"] is None
    assert report["attempts"] == []
    assert report["argv"] == ["/bin/sh", "-c", script]
    assert "SECRET" not in report["env_names"]  # type: ignore[operator]
    assert "payload_s" in report["timings"]  # type: ignore[operator]


def test_host_alias_and_image_root_ignored(tmp_path: Path) -> None:
    """Backends always pass --image-root; it does not matter for host mode (nor does a missing /cvmfs)."""
    args = ["--image", "host://", "--image-root", str(tmp_path / "none"), "--", "true"]
    proc = _pilot(tmp_path, args)
    assert proc.returncode == 0, proc.stderr
    assert _report(tmp_path)["runtime"] == "host"


def test_host_payload_killed_by_signal(tmp_path: Path) -> None:
    proc = _pilot(tmp_path, ["--image", "host:", "--", "/bin/sh", "-c", "kill -KILL $$"])
    assert proc.returncode == 128 + signal.SIGKILL
    report = _report(tmp_path)
    assert report["signal"] == signal.SIGKILL
    assert report["wrapper_exit_reason"] == "payload-signal"


def test_host_forwards_sigterm_to_payload(tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    workdir.mkdir()
    script = "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done"
    argv = [PYTHON, str(worker.pilot()), "--workdir", str(workdir), "--image", "host:", "--"]
    with subprocess.Popen(
        [*argv, "/bin/sh", "-c", script],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n"
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # a payload left behind would hold the pipe
    assert proc.returncode == 7
    assert out == "got-term\n"


def test_host_command_not_found_is_127(tmp_path: Path) -> None:
    proc = _pilot(tmp_path, ["--image", "host:", "--", "/no/such/program"])
    assert proc.returncode == 127
    assert "/no/such/program" in proc.stderr
    report = _report(tmp_path)
    assert report["exit_code"] == 127
    assert "No such file" in str(report["payload_error"])


def test_host_dry_run_runs_nothing(tmp_path: Path) -> None:
    proc = _pilot(tmp_path, ["--image", "host:", "--dry-run", "--", "touch", "marker"])
    assert proc.returncode == 0, proc.stderr
    assert "runtime: host" in proc.stdout
    assert "argv: touch marker" in proc.stdout
    assert not (tmp_path / "wd" / "marker").exists()
    assert _report(tmp_path)["wrapper_exit_reason"] == "dry-run"


def test_host_dry_run_without_workdir_as_site_validation_calls_it(tmp_path: Path) -> None:
    argv = [PYTHON, str(worker.pilot()), "--image", "host:", "--dry-run", "--", "true"]
    proc = subprocess.run(argv, env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("runtime: host\n")


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--bind", "/tmp:/data"], "--bind cannot apply with --image host:"),
        (["--require-container"], "--require-container contradicts --image host:"),
        ([], "no payload command given"),
    ],
)
def test_host_refusals_are_one_line_240(tmp_path: Path, extra: list[str], needle: str) -> None:
    command = [] if not extra else ["--", "true"]
    proc = _pilot(tmp_path, ["--image", "host:", *extra, *command])
    assert proc.returncode == 240
    errors = [line for line in proc.stderr.splitlines() if line.startswith("cops-pilot: error 240: ")]
    assert len(errors) == 1, proc.stderr
    assert needle in errors[0]
    if command:  # checked after the workdir is known: the report records the refusal
        assert _report(tmp_path)["wrapper_exit_reason"] == "bad-arguments"


def test_list_runtimes_accepts_host_image(tmp_path: Path) -> None:
    args = ["--list-runtimes", "--json", "--image", "host:", "--runtime", "proot"]
    proc = subprocess.run(
        [PYTHON, str(worker.pilot()), *args], env=_env(tmp_path), capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)["runtimes"]
    assert [(e["name"], e["status"]) for e in entries] == [("proot", "ok")]


@pytest.mark.root
def test_host_mode_as_unprivileged_user_without_cvmfs(run_pilot: PilotRunner) -> None:
    result = run_pilot(
        ["--image", "host:", "--", "/bin/sh", "-c", "id -un; echo $HOME; touch made; exit 3"],
        user="copsuser",
        cvmfs=False,
    )
    assert result.code == 3, result.stderr
    assert result.stdout.splitlines() == ["copsuser", str(result.workdir)]
    assert (result.workdir / "made").stat().st_uid == result.workdir.stat().st_uid
    assert result.report["runtime"] == "host"
    assert result.report["uid"] != 0
