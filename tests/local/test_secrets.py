"""Credentials in the submitting shell stay there: nothing the local backend writes or shows
(job dir, job.json, logs, wrapper report, store, `get`/`logs`/`list`), no payload sees them,
and no running process of the job (runner, wrapper, runtime, payload) holds them.

End to end: the real CLI in a subprocess, the real pilot wrapper, a busybox payload running `env`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path

import pytest

from computeops_grid.backends.common.environment import runner_env
from tests.conftest import Cli

log = logging.getLogger(__name__)

SECRET_NAMES = (
    "BEARER_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SESSION_TOKEN",
    "MY_API_TOKEN",
    "DB_PASSWORD",
    "GITLAB_SECRET",
)
# variables that name a credential file: their value (the path) and the file's contents are markers
SECRET_FILES = ("X509_USER_PROXY", "BEARER_TOKEN_FILE", "DIRACX_CREDENTIALS_PATH")
DECLARED = ("JOB_DECLARED", "declared-by-the-job-file")


def marker(name: str) -> str:
    return f"secret-{name.lower()}-{uuid.uuid4().hex}"


@pytest.fixture
def markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return set_markers(tmp_path, monkeypatch)


def set_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Set credentials in this process (the CLI inherits them); returns label -> marker."""
    found: dict[str, str] = {}
    for name in SECRET_NAMES:
        found[name] = marker(name)
        monkeypatch.setenv(name, found[name])
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    for name in SECRET_FILES:
        path_marker, content = marker(name + "-path"), marker(name + "-content")
        path = secrets / path_marker
        path.write_text(content + "\n")
        path.chmod(0o600)
        found[name] = path_marker  # the path itself contains a marker
        found[name + " (file contents)"] = content
        monkeypatch.setenv(name, str(path))
    return found


def write_job(path: Path, **fields: object) -> Path:
    base: dict[str, object] = {"name": "env", "image": "docker://busybox:latest", "command": "env"}
    base.update(fields)
    path.write_text(json.dumps(base))  # JSON is YAML
    return path


def leaks_in_text(where: str, text: str, markers: dict[str, str]) -> list[str]:
    return [f"{label} in {where}" for label, value in markers.items() if value in text]


def leaks_in_tree(root: Path, markers: dict[str, str]) -> list[str]:
    """Every file under ``root`` (SQLite store and its WAL included), read as bytes."""
    found = []
    files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    for path in files:
        data = path.read_bytes()
        found += [f"{label} in {path}" for label, value in markers.items() if value.encode() in data]
    log.info("searched %d files under %s", len(files), root)
    assert files, f"nothing under {root}"
    return found


def payload_env(stdout: str) -> dict[str, str]:
    """The payload's `env` lines printed by `submit --wait` (the first line is the job id)."""
    lines = stdout.splitlines()[1:]
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_no_credential_reaches_job_files_outputs_or_payload(
    cli: Cli, cops_home: Path, tmp_path: Path, markers: dict[str, str]
) -> None:
    job = write_job(tmp_path / "env.yaml", environment={DECLARED[0]: DECLARED[1]})
    submitted = cli("submit", str(job), "--wait")
    assert submitted.code == 0, submitted.stderr
    job_id = submitted.stdout.splitlines()[0].strip()
    env = payload_env(submitted.stdout)
    assert env.get(DECLARED[0]) == DECLARED[1], submitted.stdout
    assert env.get("PATH"), submitted.stdout
    leaks = leaks_in_text("submit output", submitted.stdout + submitted.stderr, markers)
    out = tmp_path / "fetched"
    for args in (("get", job_id, "-o", str(out), "--json"), ("logs", job_id), ("list", "--json")):
        result = cli(*args)
        assert result.code == 0, result.stderr
        leaks += leaks_in_text(f"`cops-grid {args[0]}`", result.stdout + result.stderr, markers)
    assert (out / "cops-report.json").is_file()
    assert DECLARED[1] in (out / "stdout").read_text()
    leaks += leaks_in_tree(cops_home, markers) + leaks_in_tree(out, markers)
    assert not leaks, "credentials leaked:\n" + "\n".join(leaks)


def test_a_variable_the_job_file_declares_is_kept(cli: Cli, tmp_path: Path, markers: dict[str, str]) -> None:
    """Declaring a variable in `environment:` is the user's explicit choice: its value passes,
    never the shell's value of the same name."""
    job = write_job(tmp_path / "env.yaml", environment={"DB_PASSWORD": "chosen-by-the-job"})
    submitted = cli("submit", str(job), "--wait")
    assert submitted.code == 0, submitted.stderr
    assert payload_env(submitted.stdout).get("DB_PASSWORD") == "chosen-by-the-job"
    assert not leaks_in_text("submit output", submitted.stdout, markers)


def group_environs(pgid: int) -> dict[int, bytes]:
    """The environment of every live process in process group ``pgid`` (runner, wrapper,
    runtime, payload)."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
            if proc.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                found[int(proc.name)] = (proc / "environ").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile, or not a process
    return found


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_running_processes_hold_no_credentials(
    cli: Cli, cops_home: Path, tmp_path: Path, markers: dict[str, str]
) -> None:
    """The detached runner and everything it starts live long: their environments hold none."""
    job = write_job(tmp_path / "sleep.yaml", command="sleep", arguments=["30"])
    submitted = cli("submit", str(job))
    assert submitted.code == 0, submitted.stderr
    job_id = submitted.stdout.splitlines()[0].strip()
    jobdir = cops_home / "jobs" / "local" / job_id
    try:
        wait_for(jobdir / "started")
        time.sleep(1)  # the wrapper has started the runtime and the payload
        environs = group_environs(int((jobdir / "runner.pid").read_text()))
        assert len(environs) >= 2, environs  # the runner and at least the wrapper
        leaks = [f"{label} in process {pid}" for pid, data in environs.items()
                 for label, value in markers.items() if value.encode() in data]  # fmt: skip
        assert not leaks, "credentials in process environments:\n" + "\n".join(leaks)
    finally:
        assert cli("cancel", job_id).code == 0


def test_runner_env_is_an_allow_list_without_credential_names() -> None:
    client = {
        "PATH": "/usr/bin", "HOME": "/root", "LC_ALL": "C.UTF-8", "COPS_PILOT_RUNTIMES": "charliecloud",
        "COPS_PILOT_TOKEN": "x", "LC_AUTH_SECRET": "x", "GITHUB_TOKEN": "x", "SSH_AUTH_SOCK": "/s",
        "AWS_PROFILE": "p", "PYTHONPATH": "/src", "HTTPS_PROXY": "http://u:p@h", "X509_CERT_DIR": "/ca",
    }  # fmt: skip
    assert runner_env(client) == {
        "PATH": "/usr/bin", "HOME": "/root", "LC_ALL": "C.UTF-8", "COPS_PILOT_RUNTIMES": "charliecloud",
        "X509_CERT_DIR": "/ca",
    }  # fmt: skip
    assert runner_env({})["PATH"]  # the runner always has a PATH
