"""The live HTCondor-CE calls (htcondor2) where they can run here: against a closed loopback
port. A real CE cannot run on this machine; submit/query/retrieve/remove are written to the
htcondor2 API (checked against 24.0.24) and their success paths are not exercised here."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from computeops_grid import worker
from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.htcondor_ce.backend import HTCondorCEBackend, HTCondorCESettings
from computeops_grid.errors import BackendUnavailable, CredentialError
from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord
from tests.htcondor.conftest import make_jwt


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the socket is


@pytest.fixture
def backend(tmp_path: Path, token_file: Path) -> HTCondorCEBackend:
    ctx = BackendContext(home=tmp_path, jobs_dir=tmp_path / "jobs", image_root=tmp_path, pilot=worker.pilot())
    return HTCondorCEBackend(HTCondorCESettings(ce=f"127.0.0.1:{closed_port()}"), ctx)


def job() -> JobRecord:
    spec = JobSpec(name="hello", image="docker://busybox:latest", command="true")
    return JobRecord(id="deadbeef0001", spec=spec, backend="htcondor-ce", native_id="12.0")


def test_unreachable_ce_leaves_jobs_retryable(backend: HTCondorCEBackend) -> None:
    (res,) = backend.submit([job()])
    assert res.native_id is None
    assert res.error is not None
    assert res.error.transient
    assert "locating the schedd of 127.0.0.1" in res.error.message


def test_unreachable_ce_for_status_cancel_and_check(backend: HTCondorCEBackend) -> None:
    with pytest.raises(BackendUnavailable, match="collector"):
        backend.status([job()])
    with pytest.raises(BackendUnavailable):
        backend.cancel([job()])
    health = backend.check()
    assert not health.reachable
    assert "collector" in health.detail


def test_expired_token_is_refused_before_connecting(backend: HTCondorCEBackend, token_file: Path) -> None:
    token_file.write_text(make_jwt(time.time() - 60))
    with pytest.raises(CredentialError, match="expired"):
        backend.preflight([job()])
    with pytest.raises(CredentialError, match="expired"):
        backend.submit([job()])


def test_missing_token_is_refused(
    backend: HTCondorCEBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BEARER_TOKEN_FILE")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "empty"))
    if Path(f"/tmp/bt_u{os.getuid()}").exists():
        pytest.skip("a real token exists in /tmp/bt_u<uid> on this machine")
    with pytest.raises(CredentialError, match="no bearer token"):
        backend.submit([job()])
