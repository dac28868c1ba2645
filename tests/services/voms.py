"""Real VOMS proxies without a VOMS server: a test-CA user cert and ``voms-proxy-fake``.

The test CA is the one the A-REX package sets up (``arcctl test-ca``); the host cert
doubles as the AC signer, as in ../shared/notes/arc-ce-local.md. Proxies are written
0600 like the real tools do; tests loosen the mode themselves when they need to.
"""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

GRID = Path("/etc/grid-security")
CERTS = GRID / "certificates"
HOSTCERT = GRID / "testCA-hostcert.pem"
HOSTKEY = GRID / "testCA-hostkey.pem"


def ensure_test_ca() -> None:
    if not HOSTCERT.exists():
        subprocess.run(["arcctl", "test-ca", "init"], check=True, capture_output=True, timeout=120)
        subprocess.run(["arcctl", "test-ca", "hostcert"], check=True, capture_output=True, timeout=120)


@dataclass(frozen=True)
class GridUser:
    cert: Path
    key: Path

    def proxy(
        self,
        out: Path,
        *,
        vo: str | None = "cops.test",
        fqans: tuple[str, ...] = (),
        hours: int = 24,
        expired: bool = False,
    ) -> Path:
        """A VOMS proxy of ``vo`` (``None``: no AC at all) made by voms-proxy-fake; 0600."""
        argv = ["voms-proxy-fake", "-cert", str(self.cert), "-key", str(self.key), "-certdir", str(CERTS)]
        argv += ["-hostcert", str(HOSTCERT), "-hostkey", str(HOSTKEY), "-rfc", "-q", "-out", str(out)]
        if vo is not None:
            argv += ["-voms", vo, "-uri", f"{socket.gethostname()}:15000"]
            for fqan in fqans or (f"/{vo}/Role=NULL/Capability=NULL",):
                argv += ["-fqan", fqan]
        if expired:  # valid for one hour, starting two hours ago
            argv += ["-hours", "1", "-pastproxy", "2:00", "-pastac", "2:00", "-vomslife", "1"]
        else:
            argv += ["-hours", str(hours)]
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
        out.chmod(0o600)
        return out


def make_user(directory: Path, name: str = "copsuser") -> GridUser:
    """A user certificate and key signed by the test CA (not added to any allow-list)."""
    ensure_test_ca()
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["arcctl", "test-ca", "usercert", "-n", name, "--no-auth"],
        cwd=directory, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return GridUser(directory / f"client-{name}-cert.pem", directory / f"client-{name}-key.pem")
