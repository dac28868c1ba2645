"""A real XRootD storage element for the storage tests (Debian xrootd-server 5.5.3), in a
private network namespace, reached through a loopback-only relay; and a moto S3 server.

XRootD listens on every interface (5.5.3 has no bind-address directive), so it runs under
``unshare -n`` with only ``lo`` up: no other host can reach it. Backends whose daemons live in
the main namespace (the local runner, slurmd, A-REX) reach it through
``tests/services/netns_relay.py``, which listens on 127.0.0.1 only. ``docs/notes/
storage-tests.md`` says why this and not the others.

The storage has what the bad cases need, all real server behaviour:

* ``/store/user``: writable, checksums adler32 on demand (``xrootd.chksum``);
* ``/store/readonly``: exported ``r/o``, every write refused by the server;
* ``/store/full``: a 64 KiB tmpfs mounted in the server's own mount namespace (nothing leaks
  to the host): a storage whose disk is full;
* ``/store/liar``: files there get a wrong checksum from the server's checksum program (an
  external program is how XRootD sites plug their own checksums in), so the client sees a
  storage that holds other bytes than it sent.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKSUM_PROGRAM = """#!/bin/sh
# the site's checksum program (given the logical path): adler32 of the file, a wrong one under /store/liar
LOCALROOT=@LOCALROOT@
case "$1" in
  */store/liar/*) echo 00000001 ;;
  *) /usr/bin/xrdadler32 "$LOCALROOT$1" | cut -d' ' -f1 ;;
esac
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def adler32(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


GRID = Path("/etc/grid-security")  # the test CA the ARC tests make (arcctl test-ca), host cert included
GRID_CERTS = GRID / "certificates"


def _host_cert(tls: Path) -> str | None:
    """The test CA's host certificate for the server's HTTPS (WebDAV); its host name, or None."""
    cert, key = GRID / "testCA-hostcert.pem", GRID / "testCA-hostkey.pem"
    if not cert.exists() and shutil.which("arcctl"):
        subprocess.run(["arcctl", "test-ca", "init"], check=True, capture_output=True)
        subprocess.run(["arcctl", "test-ca", "hostcert"], check=True, capture_output=True)
    if not cert.exists():
        return None
    tls.mkdir(exist_ok=True)
    shutil.copyfile(cert, tls / "hostcert.pem")
    shutil.copyfile(key, tls / "hostkey.pem")
    (tls / "hostkey.pem").chmod(0o600)
    return socket.gethostname()  # the host cert's name (it resolves to loopback here)


@dataclass
class XRootD:
    root: Path  # the server's oss.localroot: /store/x is root/store/x
    port: int  # the relay's port on 127.0.0.1 in the main namespace
    inner_port: int  # the server's port inside its namespace
    https_port: int | None = None  # the relay's port for WebDAV over HTTPS (XrdHttp), when the CA is here
    https_host: str = "localhost"  # the name in the host certificate

    @property
    def davs(self) -> str:
        return f"davs://{self.https_host}:{self.https_port}"

    @property
    def url(self) -> str:
        return f"root://127.0.0.1:{self.port}"

    def path(self, lfn: str) -> Path:
        return self.root / lfn.lstrip("/")

    def put(self, lfn: str, data: bytes) -> str:
        """A file on the storage (written to its disk, owned by the server's user); its URL."""
        target = self.path(lfn)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        shutil.chown(target, "nobody", "nogroup")
        return f"{self.url}/{lfn}" if lfn.startswith("/") else f"{self.url}//{lfn}"


def _config(base: Path, port: int, https_port: int | None) -> str:
    webdav = (
        [
            f"xrd.protocol XrdHttp:{https_port} libXrdHttp.so",
            f"xrd.tls {base}/tls/hostcert.pem {base}/tls/hostkey.pem",
            f"xrd.tlsca certdir {GRID_CERTS}",
        ]
        if https_port
        else []
    )
    return "\n".join(
        [
            *webdav,
            f"xrd.port {port}",
            "xrd.allow host localhost",
            "xrd.allow host 127.0.0.1",
            "all.export /store/user",
            "all.export /store/data r/o",
            "all.export /store/readonly r/o",
            "all.export /store/liar",
            "all.export /store/full",
            f"all.adminpath {base}/admin",
            f"all.pidpath {base}/run",
            f"oss.localroot {base}/data",
            f"xrootd.chksum adler32 {base}/checksum.sh",
            "",
        ]
    )


def _tail(log: Path) -> str:
    texts = [p.read_text(errors="replace")[-1500:] for p in (log, log.with_suffix(".out")) if p.exists()]
    return "\n".join(texts)


def _wait_port(proc: subprocess.Popen[bytes], check: list[str], what: str, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {_tail(log)}")
        if subprocess.run(check, capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not open its port: {_tail(log)}")


@contextlib.contextmanager
def xrootd_server(base: Path) -> Iterator[XRootD]:
    """Start XRootD in its own network namespace and the relay to it; stop both at the end."""
    for sub in (
        "data/store/user",
        "data/store/data",
        "data/store/readonly",
        "data/store/liar",
        "data/store/full",
        "admin",
        "run",
    ):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "checksum.sh").write_text(CHECKSUM_PROGRAM.replace("@LOCALROOT@", str(base / "data")))
    (base / "checksum.sh").chmod(0o755)
    inner, inner_https = 21094, 21095
    full = shlex.quote(
        str(base / "data" / "store" / "full")
    )  # a 64 KiB disk, in the server's mount namespace
    full_mount = f"mount -t tmpfs -o size=64k,uid=65534,gid=65534,mode=0755 cops-full {full}"
    https_host = _host_cert(base / "tls")
    (base / "xrootd.cfg").write_text(_config(base, inner, inner_https if https_host else None))
    log = base / "xrootd.log"
    log.touch()
    subprocess.run(["chown", "-R", "nobody:nogroup", str(base)], check=True)
    base.chmod(0o755)
    with (base / "xrootd.out").open("wb") as out:
        server = subprocess.Popen(
            ["unshare", "-n", "-m", "sh", "-c", f"{full_mount} && ip link set lo up && exec \"$@\"", "sh",
             "xrootd", "-c", str(base / "xrootd.cfg"), "-l", str(log), "-R", "nobody"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    relay = https_relay = None
    try:
        probe = [
            "nsenter",
            f"--net=/proc/{server.pid}/ns/net",
            "bash",
            "-c",
            f"exec 3<>/dev/tcp/127.0.0.1/{inner}",
        ]
        _wait_port(server, probe, "xrootd", log)
        relay = subprocess.Popen(
            [sys.executable, "-m", "tests.services.netns_relay", str(server.pid), str(inner)],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
        assert relay.stdout is not None
        port = int(relay.stdout.readline())
        https_port = None
        if https_host:
            https_relay = subprocess.Popen(
                [sys.executable, "-m", "tests.services.netns_relay", str(server.pid), str(inner_https)],
                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[2],
            )  # fmt: skip
            assert https_relay.stdout is not None
            https_port = int(https_relay.stdout.readline())
        yield XRootD(base / "data", port, inner, https_port, https_host or "localhost")
    finally:
        for pipe in (relay, https_relay):
            if pipe is not None and pipe.stdout is not None:
                pipe.stdout.close()
        for proc in (relay, https_relay, server):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@dataclass
class S3:
    endpoint: str
    keys_file: Path  # a shared-credentials file (INI) with the test keys
    access: str = "cops-test-access"
    secret: str = "cops-test-secret"  # moto accepts any keys

    def client(self) -> Any:
        import boto3  # type: ignore[import-untyped]

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access,
            aws_secret_access_key=self.secret, region_name="us-east-1",
        )  # fmt: skip


@contextlib.contextmanager
def moto_s3(base: Path) -> Iterator[S3]:
    """moto's S3 server on 127.0.0.1 (it binds where it is told), the same one DiracX tests use."""
    port = free_port()
    log = base / "moto.log"
    binary = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env={**os.environ, "MOTO_PORT": str(port)},
        )  # fmt: skip
    try:
        _wait_port(proc, ["curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{port}/"], "moto_server", log)
        s3 = S3(f"http://127.0.0.1:{port}", base / "s3-keys")
        fd = os.open(s3.keys_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"[default]\naws_access_key_id = {s3.access}\naws_secret_access_key = {s3.secret}\n")
        yield s3
    finally:
        proc.terminate()
        proc.wait(timeout=10)
