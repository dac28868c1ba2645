"""HTCondor-CE tests: submit descriptions checked with the bindings' offline parser, the error
paths against a closed port, and the live path against a real CE (``htcondor_ce`` of
tests/conftest.py: Debian trixie's HTCondor 23.9 set up as an HTCondor-CE with its pool)."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.services.htcondor import HTCondorCE

os.environ.setdefault("CONDOR_CONFIG", "/dev/null")  # a client needs no condor_config


def make_jwt(exp: float, **claims: object) -> str:
    """An unsigned JWT-shaped token: the client reads exp/iss, the CE would check the signature."""

    def enc(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    payload = {"iss": "https://token.example.org", "sub": "alice", "scope": "compute.create", "exp": int(exp)}
    payload.update(claims)
    return f"{enc({'alg': 'ES256', 'typ': 'JWT'})}.{enc(payload)}.c2ln"


@pytest.fixture
def token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "bt_u0"
    path.write_text(make_jwt(time.time() + 3600) + "\n")
    path.chmod(0o600)
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(path))
    monkeypatch.delenv("BEARER_TOKEN", raising=False)
    return path


@pytest.fixture
def ce_token(htcondor_ce: HTCondorCE, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A token of the CE's issuer where WLCG token discovery finds it (``BEARER_TOKEN_FILE``)."""
    path = tmp_path / "bt_ce"
    path.write_text(htcondor_ce.token() + "\n")
    path.chmod(0o600)
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(path))
    monkeypatch.delenv("BEARER_TOKEN", raising=False)
    return path


@pytest.fixture
def ce_settings(htcondor_ce: HTCondorCE, grid_images: Path) -> dict[str, Any]:
    """``backends.htcondor-ce:`` for the session's CE: no token_file, discovery finds it."""
    return {"ce": htcondor_ce.ce, "ca_file": str(htcondor_ce.ca_file), "image_root": str(grid_images)}
