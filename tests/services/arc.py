"""A real ARC CE (Debian's A-REX 6, REST interface) for test sessions, without systemd.

Follows ../shared/notes/arc-ce-local.md: test CA from the arex postinst, a user cert from
``arctl test-ca usercert``, VOMS proxies for the fake VO ``cops.test`` made with
``voms-proxy-fake`` (no VOMS server), the ``.lsc`` file A-REX needs, and the two
``arched`` processes (web service + job manager), on the fork LRMS (jobs run as ``nobody``
on this machine) or on the Slurm LRMS of ``tests/services/slurm``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.services.slurm import SlurmCluster, free_port, world_dir

GRID = Path("/etc/grid-security")
CERTS = GRID / "certificates"
HOSTCERT = GRID / "testCA-hostcert.pem"
HOSTKEY = GRID / "testCA-hostkey.pem"
VO = "cops.test"
DHPARAM_CACHE = Path("/tmp/cops-arc-dhparam.pem")

ARC_CONF = """\
[common]
hostname = {host}
x509_host_key = {hostkey}
x509_host_cert = {hostcert}
x509_cert_dir = {certs}
[authgroup:copsvo]
voms = {vo} * * *
[mapping]
map_to_user = copsvo nobody:nogroup
{lrms}
[arex]
loglevel = 3
logfile = {d}/log/arex.log
joblog = {d}/log/arex-jobs.log
helperlog = {d}/log/job.helper.errors
pidfile = {d}/run/arched-arex.pid
controldir = {d}/control
sessiondir = {d}/session
tmpdir = {d}/tmp
wakeupperiod = 2
[arex/ws]
wsurl = https://{host}:{port}/arex
logfile = {d}/log/ws-interface.log
pidfile = {d}/run/arched-arex-ws.pid
[arex/ws/jobs]
allowaccess = copsvo
[infosys]
logfile = {d}/log/infoprovider.log
[infosys/glue2]
[infosys/cluster]
[queue:{queue}]
"""
SLURM_LRMS = """\
[lrms]
lrms = slurm
slurm_bin_path = /usr/bin
slurm_use_sacct = no
slurm_wakeupperiod = 2"""
FORK_LRMS = """\
[lrms]
lrms = fork"""

AREX_XML = """\
<ArcConfig xmlns="http://www.nordugrid.org/schemas/ArcConfig/2007"
           xmlns:arex="http://www.nordugrid.org/schemas/a-rex/Config">
  <Server><Logger><File>{d}/log/arex.log</File><Level>INFO</Level></Logger>
          <Watchdog>false</Watchdog></Server>
  <ModuleManager><Path>/usr/lib/arc/</Path></ModuleManager>
  <Plugins><Name>arex</Name></Plugins>
  <Chain><Service name="a-rex" id="a-rex">
    <arex:endpoint>https://{host}:{port}/arex</arex:endpoint>
    <arex:InfoproviderWakeupPeriod>3</arex:InfoproviderWakeupPeriod>
    <arex:gmconfig>{d}/run/arched-arex.cfg</arex:gmconfig>
  </Service></Chain>
</ArcConfig>
"""


@dataclass
class ArcCE:
    root: Path
    host: str
    port: int
    user_cert: Path
    user_key: Path
    lrms: str = "slurm"
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    lsc: Path | None = None

    @property
    def queue(self) -> str:
        return "debug" if self.lrms == "slurm" else "fork"

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/arex"

    def proxy(self, name: str, *, vo: str = VO, hours: int = 24, minutes: int = 0) -> Path:
        """A VOMS proxy (RFC 3820) for ``vo`` made with voms-proxy-fake; 0600 like real ones."""
        out = self.root / "proxies" / name
        out.parent.mkdir(exist_ok=True)
        argv = [
            "voms-proxy-fake",
            "-cert", str(self.user_cert),
            "-key", str(self.user_key),
            "-certdir", str(CERTS),
            "-hostcert", str(HOSTCERT),
            "-hostkey", str(HOSTKEY),
            "-voms", vo,
            "-uri", f"{self.host}:15000",
            "-fqan", f"/{vo}/Role=NULL/Capability=NULL",
            "-rfc",
            "-out", str(out),
        ]  # fmt: skip
        argv += ["-hours", str(hours)] if not minutes else ["-minutes", str(minutes)]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
        out.chmod(0o600)
        return out

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _kill_leftovers(self.root / "session")
        # the .lsc file stays: it is the same for every CE made from the test CA, and other
        # pytest sessions on this machine may be running an A-REX that needs it right now
        shutil.rmtree(self.root, ignore_errors=True)


def _dhparam(dest: Path) -> None:
    if not DHPARAM_CACHE.exists():
        tmp = DHPARAM_CACHE.with_suffix(f".{os.getpid()}")
        subprocess.run(
            ["openssl", "dhparam", "-dsaparam", "-out", str(tmp), "2048"], check=True, capture_output=True
        )
        tmp.replace(DHPARAM_CACHE)
    shutil.copyfile(DHPARAM_CACHE, dest)
    dest.chmod(0o600)


def _dn(cert: Path, which: str) -> str:
    out = subprocess.run(
        ["openssl", "x509", "-noout", f"-{which}", "-nameopt", "compat", "-in", str(cert)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return out.split("=", 1)[1].strip()


def _lsc(host: str) -> Path:
    """``/etc/grid-security/vomsdir/<vo>/<host>.lsc``; the ``/`` in ``CN=host/vm`` escaped."""
    subject = _dn(HOSTCERT, "subject").replace("CN=host/", "CN=host\\/")
    path = GRID / "vomsdir" / VO / f"{host}.lsc"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{subject}\n{_dn(HOSTCERT, 'issuer')}\n")
    return path


def _user_cert(root: Path) -> tuple[Path, Path]:
    subprocess.run(
        ["arcctl", "test-ca", "usercert", "-n", "copsuser", "--no-auth"],
        cwd=root, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return root / "client-copsuser-cert.pem", root / "client-copsuser-key.pem"


def wait_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"A-REX did not listen on {host}:{port} within {timeout} s")


def _kill_leftovers(session: Path) -> None:
    """The fork LRMS kills only a job's top PID: end what still runs in this CE's session dir."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if cwd.startswith(str(session)) or str(session).encode() in cmdline:
            with contextlib.suppress(OSError):
                os.kill(int(proc.name), signal.SIGKILL)


def start_arc(slurm: SlurmCluster | None = None) -> ArcCE:
    """Start A-REX (WS + job manager) on the given Slurm, or on the fork LRMS without one.

    Returns when REST answers.
    """
    for tool in ("arched", "arcctl", "voms-proxy-fake", "openssl"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise RuntimeError(f"{tool} is not installed (see etc/deps/apt-grid.txt)")
    if not HOSTCERT.exists():
        subprocess.run(["arcctl", "test-ca", "init"], check=True, capture_output=True)
        subprocess.run(["arcctl", "test-ca", "hostcert"], check=True, capture_output=True)
    root = world_dir("cops-arc-")
    for sub in ("log", "run", "control", "session", "tmp", "client"):
        (root / sub).mkdir()
    (root / "tmp").chmod(0o1777)
    host, port = socket.gethostname(), free_port()  # the host cert's name (getfqdn says localhost)
    _dhparam(root / "control" / "dhparam.pem")
    cert, key = _user_cert(root)
    lrms = "fork" if slurm is None else "slurm"
    ce = ArcCE(root=root, host=host, port=port, user_cert=cert, user_key=key, lrms=lrms, lsc=_lsc(host))
    conf = root / "arc.conf"
    conf.write_text(
        ARC_CONF.format(
            host=host, port=port, d=root, vo=VO, hostkey=HOSTKEY, hostcert=HOSTCERT, certs=CERTS,
            lrms=FORK_LRMS if slurm is None else SLURM_LRMS, queue=ce.queue,
        )
    )  # fmt: skip
    (root / "run" / "arex.xml").write_text(AREX_XML.format(host=host, port=port, d=root))
    base_env = dict(os.environ) if slurm is None else slurm.env
    env = {**base_env, "ARC_CONFIG": str(conf), "TMPDIR": str(root / "tmp")}
    try:
        runconfig = str(root / "run" / "arched-arex.cfg")
        parser = ["/usr/lib/arc/arcconfig-parser", "--config", str(conf), "--runconfig", runconfig, "--save"]
        subprocess.run(parser, check=True, capture_output=True, env=env)
        log = (root / "log" / "daemons.out").open("wb")
        ce.procs.append(
            subprocess.Popen(["/usr/share/arc/arc-arex-ws-start", "-f"], env=env, stdout=log, stderr=log)
        )
        manager_env = {
            **env,
            "X509_USER_CERT": str(HOSTCERT),
            "X509_USER_KEY": str(HOSTKEY),
            "X509_CERT_DIR": str(CERTS),
        }
        ce.procs.append(
            subprocess.Popen(
                ["/usr/sbin/arched", "-f", "-c", str(root / "run" / "arex.xml")],
                env=manager_env,
                stdout=log,
                stderr=log,
            )
        )
        log.close()
        wait_port(host, port, 60)
        _wait_rest(ce)
    except BaseException:
        ce.stop()
        raise
    return ce


def _wait_rest(ce: ArcCE, timeout: float = 30) -> None:
    ctx = ssl.create_default_context(capath=str(CERTS))
    ctx.load_cert_chain(str(ce.user_cert), str(ce.user_key))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with (
                socket.create_connection((ce.host, ce.port), timeout=2) as raw,
                ctx.wrap_socket(raw, server_hostname=ce.host) as tls,
            ):
                tls.sendall(f"GET /arex/rest HTTP/1.0\r\nHost: {ce.host}\r\n\r\n".encode())
                if _read_all(tls).startswith(b"HTTP/1"):  # 403 without VOMS: the service is up
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("A-REX REST did not answer GET /arex/rest")


def _read_all(tls: ssl.SSLSocket) -> bytes:
    data = b""
    while chunk := tls.recv(4096):
        data += chunk
    return data
