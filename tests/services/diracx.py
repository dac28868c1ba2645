"""A real DiracX server on 127.0.0.1 for the tests: routers under uvicorn, SQLite, moto S3.

Everything comes from the PyPI packages listed in ``etc/deps/pip-dirac.txt``. The
configuration repository is built with DiracX's own ``dirac internal`` commands, tokens
come from the server's real legacy-exchange endpoint (no IdP here). Used by the
session fixture in ``tests/diracx/conftest.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

VO = "testvo"
USER_SUB = "11111111-2222-3333-4444-555555555555"
PILOT_SUB = "99999999-2222-3333-4444-555555555555"
DB_NAMES = (
    "AUTHDB",
    "JOBDB",
    "JOBLOGGINGDB",
    "PILOTAGENTSDB",
    "SANDBOXMETADATADB",
    "TASKQUEUEDB",
    "TASKDB",
    "RESOURCESTATUSDB",
    "TRANSFORMATIONDB",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bin(name: str) -> str:
    """A console script installed next to this interpreter (the same environment)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


@dataclass
class DiracXServer:
    """One DiracX server plus its S3 stand-in, both bound to loopback."""

    root: Path
    port: int = field(default_factory=free_port)
    s3_port: int = field(default_factory=free_port)
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _cli(self, *args: str) -> None:
        subprocess.run([_bin("dirac"), "internal", *args], check=True, capture_output=True, timeout=120)

    def _config_repo(self) -> Path:
        repo = self.root / "cs" / "repo"
        self._cli("generate-cs", str(repo))
        common = (str(repo), f"--vo={VO}")
        self._cli(
            "add-vo", *common, "--idp-url=https://idp.invalid", "--idp-client-id=cid",
            f"--default-group={VO}_user",
        )  # fmt: skip
        self._cli(
            "add-group", *common, f"--group={VO}_pilot",
            "--properties", "GenericPilot", "--properties", "LimitedDelegation",
        )  # fmt: skip
        self._cli(
            "add-user", *common, f"--group={VO}_user", f"--sub={USER_SUB}", "--preferred-username=alice"
        )
        self._cli(
            "add-user", *common, f"--group={VO}_pilot", f"--sub={PILOT_SUB}", "--preferred-username=pilot"
        )
        return repo

    def environ(self, repo: Path) -> dict[str, str]:
        env = dict(os.environ)
        for name in DB_NAMES:
            env[f"DIRACX_DB_URL_{name}"] = f"sqlite+aiosqlite:///{self.root}/{name.lower()}.db"
        env["DIRACX_OS_DB_JOBPARAMETERSDB"] = json.dumps(
            {"sqlalchemy_dsn": f"sqlite+aiosqlite:///{self.root}/jobparametersdb.db"}
        )
        s3 = {
            "endpoint_url": f"http://127.0.0.1:{self.s3_port}",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        env.update(
            DIRACX_CONFIG_BACKEND_URL=f"git+file://{repo}",
            DIRACX_SERVICE_AUTH_TOKEN_KEYSTORE=f"file://{self.root}/jwks.json",
            DIRACX_SERVICE_AUTH_TOKEN_ISSUER=self.url,
            DIRACX_SERVICE_AUTH_STATE_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
            DIRACX_SERVICE_AUTH_ALLOWED_REDIRECTS=json.dumps([f"{self.url}/api/docs/oauth2-redirect"]),
            DIRACX_SANDBOX_STORE_BUCKET_NAME="sandboxes",
            DIRACX_SANDBOX_STORE_AUTO_CREATE_BUCKET="true",
            DIRACX_SANDBOX_STORE_S3_CLIENT_KWARGS=json.dumps(s3),
            DIRACX_LEGACY_EXCHANGE_HASHED_API_KEY=hashlib.sha256(self.secret.encode()).hexdigest(),
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
        )
        return env

    def start(self) -> DiracXServer:
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "diracx.logic", "rotate-jwk", "--jwks-path", str(self.root / "jwks.json")],
            check=True,
            capture_output=True,
            timeout=120,
        )
        env = self.environ(self._config_repo())
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        self._spawn([_bin("moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port)], env, logs / "moto.log")
        self._spawn(
            [
                *(sys.executable, "-m", "uvicorn", "--factory", "diracx.testing.routers:create_app"),
                *("--host", "127.0.0.1", "--port", str(self.port)),
            ],
            env,
            logs / "uvicorn.log",
        )
        self._wait_ready(logs / "uvicorn.log")
        return self

    def _spawn(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("wb") as out:
            self.procs.append(
                subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=self.root)
            )

    def _wait_ready(self, log: Path, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"DiracX server exited during start-up:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/health/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"DiracX server not ready after {timeout} s:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def token(self, username: str = "alice", group: str = f"{VO}_user") -> dict[str, object]:
        """A real token response from the server's legacy-exchange endpoint."""
        query = urllib.parse.urlencode({"preferred_username": username, "scope": f"vo:{VO} group:{group}"})
        key = base64.urlsafe_b64encode(self.secret.encode()).decode()
        req = urllib.request.Request(
            f"{self.url}/api/auth/legacy-exchange?{query}",
            headers={"Authorization": f"Bearer diracx:legacy:{key}"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            data: dict[str, object] = json.load(resp)
        return data

    def write_credentials(self, path: Path, username: str = "alice", group: str = f"{VO}_user") -> Path:
        """The token in DiracX's credentials-file format (0600), as ``dirac login`` writes it."""
        data = self.token(username, group)
        expires_in = int(str(data["expires_in"]))
        content = {
            "access_token": data["access_token"],
            "refresh_token": data.get("refresh_token"),
            "expires_on": int(time.time()) + expires_in - 60,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(content, fh)
        return path
