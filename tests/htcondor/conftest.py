"""HTCondor-CE tests: no HTCondor daemon can run here (no Debian package, the PyPI wheel has
only the bindings), so descriptions are checked with the bindings' offline parser."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

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
