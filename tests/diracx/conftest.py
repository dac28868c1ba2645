"""Fixtures for the DiracX tests (the session's DiracX server, ``diracx_server``, and the
user's credentials, ``alice``, are in tests/conftest.py: tests/faults uses them too)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from computeops_grid import worker
from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.dirac.diracx import DiracXBackend, DiracXSettings
from computeops_grid.backends.dirac.diracx_client import DiracXClient
from tests.services.diracx import DiracXServer


@pytest.fixture
def backend(diracx_server: DiracXServer, alice: Path, tmp_path: Path, image_root: Path) -> DiracXBackend:
    ctx = BackendContext(
        home=tmp_path, jobs_dir=tmp_path / "jobs", image_root=image_root, pilot=worker.pilot()
    )
    return DiracXBackend(DiracXSettings(url=diracx_server.url, credentials=alice), ctx)


@pytest.fixture
def client(diracx_server: DiracXServer, alice: Path) -> Iterator[DiracXClient]:
    with DiracXClient(diracx_server.url, alice) as cli:
        yield cli


@pytest.fixture
def pilot_env(image_root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The worker-node environment: the wrapper finds images in the test image root."""
    monkeypatch.setenv("COPS_PILOT_IMAGE_ROOT", str(image_root))
    return {**os.environ, "COPS_PILOT_IMAGE_ROOT": str(image_root)}


def expired_copy(creds: Path, dest: Path) -> Path:
    """A credentials file whose access and refresh tokens both expired an hour ago.

    The claims are re-encoded without a valid signature: the client must refuse the
    file before sending anything, so the server never sees it.
    """
    data = json.loads(creds.read_text())

    def expire(token: str) -> str:
        head, payload, sig = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["exp"] = 1_700_000_000
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return f"{head}.{body}.{sig}"

    data["access_token"] = expire(data["access_token"])
    data["refresh_token"] = expire(data["refresh_token"])
    data["expires_on"] = 1_700_000_000
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    return dest
