"""A real HTCondor-CE set-up on loopback: Debian trixie's HTCondor 23.9 in its cached root.

Two HTCondor instances run from the trixie root (``scripts/debian-roots.sh htcondor``),
entered with bubblewrap as root, the way an HTCondor-CE host runs them:

* the **CE**: collector and schedd behind one shared port (``ce``), and a JobRouter with one
  route to the pool's schedd (HTCondor-CE's own ``condor-ce`` instance). Clients authenticate
  with SciTokens: the CE validates tokens against the fixture's issuer (HTTPS on loopback,
  test CA) and maps ``<issuer>,<sub>`` to a local user, as HTCondor-CE's mapfile does; the SSL
  channel below the token uses a host certificate of the same CA;
* the **pool** (the site's batch system): collector, schedd, negotiator and a partitionable
  startd behind a second shared port. Routed jobs run there as the mapped user; the pilot
  wrapper runs the payload with the bubblewrap of the trixie root.

Both bind 127.0.0.1 only (``BIND_ALL_INTERFACES = False``, ``NETWORK_INTERFACE``); the ports
are picked free at start (a real CE listens on 9619). Daemons authenticate each other with FS.
The cached root is never written: configuration, spools and logs live in a state directory
under /tmp, and /etc/passwd, /etc/hosts and the CA bundle are bound over the root's.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from computeops_grid.bench.daemons import world_dir
from tests.services.debian_roots import build
from tests.services.token_issuer import TokenIssuer

AUDIENCE = "https://cops-ce.test"  # what the CE accepts in a token's aud
SCOPES = "compute.create compute.read compute.modify compute.cancel"
TOKEN_SUBJECT = "alice"
CONDOR_UID, CONDOR_GID = 100, 101  # the trixie root's condor user
START_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def host_name() -> str:
    """The name the CE is known by: this host's name where it resolves to loopback."""
    name = socket.gethostname()
    with contextlib.suppress(OSError):
        if socket.gethostbyname(name).startswith("127."):
            return name
    return "localhost"


COMMON = """\
RELEASE_DIR = /usr
BIN = /usr/bin
SBIN = /usr/sbin
LIB = /usr/lib/condor
LIBEXEC = /usr/libexec/condor
SHARE = /usr/share/condor
LOCAL_DIR = {local}
LOG = $(LOCAL_DIR)/log
SPOOL = $(LOCAL_DIR)/spool
EXECUTE = $(LOCAL_DIR)/execute
LOCK = $(LOCAL_DIR)/lock
RUN = $(LOCAL_DIR)/run
CRED_STORE_DIR = $(LOCAL_DIR)/cred
CONDOR_HOST = 127.0.0.1
NETWORK_HOSTNAME = {name}
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
ENABLE_IPV6 = False
UID_DOMAIN = cops.test
FILESYSTEM_DOMAIN = cops.test
TRUST_UID_DOMAIN = True
USE_SHARED_PORT = True
SHARED_PORT_ARGS = -p {port}
COLLECTOR_HOST = 127.0.0.1:{port}?sock=collector
CONDOR_ADMIN =
MAIL = /bin/true
DISCARD_SESSION_KEYRING_ON_STARTUP = False
USE_PID_NAMESPACES = False
# the starter cannot bind /tmp here (it skips it), and the job's namespace then refuses the
# wrapper's unprivileged bubblewrap its own /proc ("Can't mount proc"): no scratch mounts
MOUNT_UNDER_SCRATCH =
BASE_CGROUP =
ALLOW_READ = *
ALLOW_WRITE = *
ALLOW_DAEMON = *
ALLOW_NEGOTIATOR = *
ALLOW_ADMINISTRATOR = *
SEC_DEFAULT_AUTHENTICATION = REQUIRED
SEC_DEFAULT_AUTHENTICATION_METHODS = FS
SEC_CLIENT_AUTHENTICATION_METHODS = FS
SEC_DEFAULT_ENCRYPTION = OPTIONAL
SEC_DEFAULT_INTEGRITY = OPTIONAL
CERTIFICATE_MAPFILE = {local}/mapfile
UPDATE_INTERVAL = 2
SCHEDD_INTERVAL = 2
SCHEDD_MIN_INTERVAL = 1
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_MIN_INTERVAL = 1
NEGOTIATOR_CYCLE_DELAY = 1
STARTER_UPDATE_INTERVAL = 2
SHADOW_QUEUE_UPDATE_INTERVAL = 2
PERIODIC_EXPR_INTERVAL = 2
STARTD_CRON_JOBLIST =
"""

CE = """\
DAEMON_LIST = MASTER, COLLECTOR, SCHEDD, JOB_ROUTER, SHARED_PORT
SEC_DEFAULT_AUTHENTICATION_METHODS = FS, SCITOKENS
SCITOKENS_SERVER_AUDIENCE = {audience}
AUTH_SSL_SERVER_CERTFILE = {hostcert}
AUTH_SSL_SERVER_KEYFILE = {hostkey}
AUTH_SSL_SERVER_CAFILE = {ca}
AUTH_SSL_CLIENT_CAFILE = {ca}
# HTCondor-CE routes only jobs that arrived with a token (or a proxy); vanilla, not yet routed
JOB_ROUTER_SOURCE_JOB_CONSTRAINT = (target.AuthTokenSubject =!= undefined) && (target.JobUniverse =?= 5)
JOB_ROUTER_POLLING_PERIOD = 2
JOB_ROUTER_SCHEDD2_NAME = {pool_schedd}
JOB_ROUTER_SCHEDD2_POOL = 127.0.0.1:{pool_port}
JOB_ROUTER_SCHEDD2_SPOOL = {pool_spool}
JOB_ROUTER_ROUTE_NAMES = Pool
# the CE's resource attributes become the batch job's requests, as HTCondor-CE's routes do
JOB_ROUTER_ROUTE_Pool @=jrt
  UNIVERSE VANILLA
  EVALSET RequestCpus ifThenElse(xcount isnt undefined, xcount, RequestCpus)
  EVALSET RequestMemory ifThenElse(maxMemory isnt undefined, maxMemory, RequestMemory)
  EVALSET BatchRuntime ifThenElse(maxWallTime isnt undefined, 60 * maxWallTime, undefined)
@jrt
"""

POOL = """\
DAEMON_LIST = MASTER, COLLECTOR, SCHEDD, NEGOTIATOR, STARTD, SHARED_PORT
SCHEDD_NAME = {pool_schedd}
# the CE's JobRouter submits as condor, on behalf of the job's owner (HTCondor-CE's batch side)
QUEUE_SUPER_USERS = root, condor
QUEUE_SUPER_USER_MAY_IMPERSONATE = .*
NUM_CPUS = 4
MEMORY = 4096
SLOT_TYPE_1 = 100%
SLOT_TYPE_1_PARTITIONABLE = True
NUM_SLOTS_TYPE_1 = 1
START = True
SUSPEND = False
PREEMPT = False
KILL = False
WANT_SUSPEND = False
WANT_VACATE = False
"""


@dataclass
class HTCondorCE:
    root: Path
    state: Path
    name: str  # the CE host name (resolves to 127.0.0.1)
    port: int
    pool_port: int
    issuer: TokenIssuer
    user: str  # the local user that the CE maps the token's subject to
    masters: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def ce(self) -> str:
        """``host:port`` as a client names the CE (the backend's ``ce`` setting)."""
        return f"{self.name}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.issuer.ca.ca_file

    def token(self, sub: str = TOKEN_SUBJECT, aud: str = AUDIENCE, **claims: object) -> str:
        """A token of the issuer for ``sub``, that the CE maps to ``user`` (as issued: valid)."""
        return self.issuer.token(sub, audience=aud, scope=SCOPES, **claims)

    def enter(self, instance: str, *argv: str) -> list[str]:
        """argv that runs ``argv`` in the trixie root with ``instance``'s configuration."""
        s = self.state
        return [
            "bwrap", "--ro-bind", str(self.root), "/", "--dev-bind", "/dev", "/dev",
            # the host's /proc as it is: an unprivileged bubblewrap in a job mounts its own
            "--bind", "/proc", "/proc", "--ro-bind", "/sys", "/sys", "--tmpfs", "/run",
            "--bind", "/tmp", "/tmp",
            "--ro-bind", str(s / "passwd"), "/etc/passwd", "--ro-bind", str(s / "group"), "/etc/group",
            "--ro-bind", str(s / "hosts"), "/etc/hosts",
            "--ro-bind", str(s / "ca-bundle.crt"), "/etc/ssl/certs/ca-certificates.crt",
            "--bind", str(s / "condor-home"), "/var/lib/condor",
            "--setenv", "CONDOR_CONFIG", str(s / instance / "condor_config"), "--die-with-parent",
            "--", *argv,
        ]  # fmt: skip

    def run(self, instance: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """A command-line tool (condor_q, condor_status...) of ``instance``, as root."""
        return subprocess.run(
            self.enter(instance, *argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def log(self, instance: str, daemon: str) -> str:
        path = self.state / instance / "log" / f"{daemon}Log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        for instance in ("pool", "ce"):
            argv = self.enter(instance, "/usr/sbin/condor_master", "-f")
            with (self.state / instance / "master.out").open("wb") as out:
                self.masters[instance] = subprocess.Popen(
                    argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        want = {"pool": ("Scheduler", "Negotiator", "Machine"), "ce": ("Scheduler",)}
        missing: dict[str, list[str]] = {}
        while time.monotonic() < deadline:
            missing = {}
            for instance, kinds in want.items():
                proc = self.run(instance, "condor_status", "-any", "-af", "MyType")
                seen = set(proc.stdout.split())
                if lost := [k for k in kinds if k not in seen]:
                    missing[instance] = lost
            if not missing and self.log("ce", "JobRouter"):
                return
            for instance, master in self.masters.items():
                if master.poll() is not None:
                    raise RuntimeError(f"condor_master ({instance}) exited: {self.diagnostics()}")
            time.sleep(0.5)
        raise RuntimeError(f"HTCondor not ready after {START_TIMEOUT:.0f} s: missing {missing}; "
                           f"{self.diagnostics()}")  # fmt: skip

    def diagnostics(self) -> str:
        parts = []
        for instance in ("ce", "pool"):
            out = self.state / instance / "master.out"
            if out.exists():
                parts.append(f"{instance} master output: {out.read_text(errors='replace')[-1500:]}")
            for daemon in ("Master", "Schedd", "JobRouter", "Collector", "Startd"):
                text = self.log(instance, daemon)
                if text:
                    parts.append(f"{instance} {daemon}Log: ...{text[-1500:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM to each condor_master (it shuts its daemons down), SIGKILL after 30 s.

        The master is bubblewrap's child; bubblewrap's parent-death signal does not reach it
        (cleared when the master switches to the condor user), so it is signalled by pid."""
        masters = {name: _children(proc.pid) for name, proc in self.masters.items()}
        for pid in (p for pids in masters.values() for p in pids):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        alive = [p for pids in masters.values() for p in pids]
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = [p for p in alive if Path(f"/proc/{p}").exists()]
        for pid in alive:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.masters.values():
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of bubblewrap's session
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        for pid in _started_here(self.state):  # daemons of a master that did not shut them down
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.issuer.stop()
        shutil.rmtree(self.state, ignore_errors=True)


def _started_here(state: Path) -> list[int]:
    """Processes whose HTCondor configuration lies in ``state`` (each daemon has its own session)."""
    mark = f"CONDOR_CONFIG={state}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if mark in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
    return found


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-m", name], check=True)
        return pwd.getpwnam(name)


def _mapfile(issuer_url: str, user: str) -> str:
    """HTCondor-CE's mapping: ``<issuer>,<subject>`` of a token to a local user; daemons by FS."""
    return f"SCITOKENS {issuer_url},{TOKEN_SUBJECT} {user}\nFS (.*) \\1\n"


def start_htcondor_ce(user: str = "copsuser") -> HTCondorCE:
    """Build (once per machine) the trixie root and start the CE and its pool."""
    root = build("htcondor")
    entry = ensure_user(user)
    state = world_dir("cops-htcondor-")
    name = host_name()
    issuer = TokenIssuer(state / "pki", [name])
    ce = HTCondorCE(root, state, name, free_port(), free_port(), issuer, user)
    try:
        _configure(ce, entry)
        ce.start()
    except BaseException:
        ce.stop()
        raise
    return ce


def _configure(ce: HTCondorCE, entry: pwd.struct_passwd) -> None:
    s, root = ce.state, ce.root
    passwd = (root / "etc/passwd").read_text()
    group = (root / "etc/group").read_text()
    (s / "passwd").write_text(
        passwd + f"{entry.pw_name}:x:{entry.pw_uid}:{entry.pw_gid}::{entry.pw_dir}:/bin/sh\n"
    )
    (s / "group").write_text(group + f"{entry.pw_name}:x:{entry.pw_gid}:\n")
    (s / "hosts").write_text(f"127.0.0.1 {ce.name} localhost\n")  # the name first: it is canonical
    bundle = (root / "etc/ssl/certs/ca-certificates.crt").read_text() + ce.ca_file.read_text()
    (s / "ca-bundle.crt").write_text(bundle)
    hostcert, hostkey = ce.issuer.ca.server_cert("hostcert", [ce.name, "127.0.0.1", "localhost"])
    for path in (hostcert, hostkey):
        os.chown(path, CONDOR_UID, CONDOR_GID)
    (s / "pki").chmod(0o755)
    (s / "condor-home").mkdir()
    os.chown(s / "condor-home", CONDOR_UID, CONDOR_GID)
    pool_schedd = f"pool@{ce.name}"
    for instance, port, extra in (("ce", ce.port, CE), ("pool", ce.pool_port, POOL)):
        local = s / instance
        local.mkdir()
        for sub in ("log", "spool", "execute", "lock", "run", "cred"):
            (local / sub).mkdir()
            os.chown(local / sub, CONDOR_UID, CONDOR_GID)
        (local / "execute").chmod(0o755)
        (local / "mapfile").write_text(_mapfile(ce.issuer.url, ce.user))
        text = COMMON.format(local=local, port=port, name=ce.name) + extra.format(
            audience=AUDIENCE, hostcert=hostcert, hostkey=hostkey, ca=ce.ca_file, pool_schedd=pool_schedd,
            pool_port=ce.pool_port, pool_spool=s / "pool" / "spool",
        )  # fmt: skip
        (local / "condor_config").write_text(text)


if __name__ == "__main__":  # a CE to try things against: python3 -m tests.services.htcondor
    started = time.monotonic()
    cluster = start_htcondor_ce()
    print(f"CE {cluster.ce} up in {time.monotonic() - started:.1f} s; state {cluster.state}")
    print(f"token: {cluster.token()}")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        cluster.stop()
