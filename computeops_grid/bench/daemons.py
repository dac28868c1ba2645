"""Private daemons for benchmarks and tests: a dockerd (and one-node swarm), a Slurm.

Nothing here touches the host's networking or system daemons. The dockerd gets its
own data root, exec root and socket under one directory, no iptables rules and no
bridge (``--bridge=none``; containers share the loopback-only default network);
recipe and quirks: ``shared/notes/engines-and-orchestrators.md``. The single-node
Slurm (munged + slurmctld + slurmd on loopback) gets its own munge key and socket and
free ports; recipe: ``shared/notes/slurm-single-node.md``. With ``accounting=True`` it
also gets its own MariaDB server (own datadir and socket, TCP on 127.0.0.1 only) and a
slurmdbd on it, so ``sacct`` answers; recipe: ``docs/notes/slurmdbd-mariadb.md``.
That MariaDB starter (:func:`start_mariadb`) is shared with the tests' VOMS server
(``tests/services/voms.py``, ``docs/notes/voms-server.md``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from computeops_grid.errors import BackendUnavailable

log = logging.getLogger(__name__)

# Debian's client matches the daemon; /usr/local/bin/docker may be a newer CLI first on PATH.
DOCKER_CLI_CANDIDATES = ("/usr/bin/docker", "docker")
MAX_EXEC_ROOT = 60  # containerd's socket path must fit the 108-byte unix-socket limit


def free_port(kind: int = socket.SOCK_STREAM, low: int = 20000, high: int = 49151) -> int:
    """A port free on loopback in [low, high] (swarm's data-path port must be below 49152)."""
    for _ in range(200):
        port = random.randint(low, high)  # noqa: S311 (not security relevant)
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise BackendUnavailable(f"no free port between {low} and {high} on 127.0.0.1")


def docker_cli() -> str | None:
    """The docker client to drive by argv (Debian's first), or None when there is none."""
    for cand in DOCKER_CLI_CANDIDATES:
        found = shutil.which(cand)
        if found:
            return found
    return None


@dataclass
class PrivateDockerd:
    """A dockerd fully private to ``root`` (a short directory), started without systemd."""

    root: Path
    proc: subprocess.Popen[bytes] | None = None
    swarm: bool = False
    env: dict[str, str] = field(default_factory=dict)

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def start(self, *, timeout: float = 60.0) -> PrivateDockerd:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise BackendUnavailable(
                "dockerd not found", backend="docker", hint="install Debian's docker.io package"
            )
        exec_root = self.root / "x"
        if len(str(exec_root)) > MAX_EXEC_ROOT:
            raise BackendUnavailable(f"exec root {exec_root} is too long for containerd's socket path")
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [
            dockerd,
            f"--data-root={self.root / 'data'}",
            f"--exec-root={exec_root}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            f"--host={self.host}",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--storage-driver=overlay2",
        ]
        logf = (self.root / "dockerd.log").open("ab")
        self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        self.env = {"DOCKER_HOST": self.host}
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            if self.cli("version", check=False).returncode == 0:
                return
            time.sleep(0.1)
        tail = (self.root / "dockerd.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise BackendUnavailable(f"private dockerd did not become ready in {timeout:.0f}s:\n{tail}")

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cli = docker_cli()
        if cli is None:
            raise BackendUnavailable("docker client not found", hint="install Debian's docker.io package")
        env = {**os.environ, "DOCKER_HOST": self.host}
        proc = subprocess.run(
            [cli, *args], check=False, env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise BackendUnavailable(f"docker {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def init_swarm(self) -> None:
        """Make this daemon a one-node swarm manager on loopback, on free ports.

        The default ports (2377 management, 4789 data path) would collide with any other
        swarm on this host, e.g. a second test session.
        """
        port = free_port()
        self.cli(
            "swarm", "init", "--advertise-addr", f"127.0.0.1:{port}", "--listen-addr", f"127.0.0.1:{port}",
            "--data-path-port", str(free_port(socket.SOCK_DGRAM)),
        )  # fmt: skip
        self.swarm = True

    def stop(self) -> None:
        """Remove services and containers, leave the swarm, stop dockerd, unmount leftovers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._clean_objects()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        for mnt in (self.root / "x" / "netns" / "default", self.root / "data"):
            if os.path.ismount(mnt):
                subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)

    def _clean_objects(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            if self.swarm:
                services = self.cli("service", "ls", "-q", check=False).stdout.split()
                if services:
                    self.cli("service", "rm", *services, check=False)
                self.cli("swarm", "leave", "--force", check=False)
                self.cli("network", "rm", "docker_gwbridge", check=False)
                self.swarm = False
            containers = self.cli("ps", "-aq", check=False).stdout.split()
            if containers:
                self.cli("rm", "-f", *containers, check=False)


# -- a single-node Slurm ---------------------------------------------------------------

SLURM_DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "sinfo")
SLURM_CONF = """\
ClusterName=copstest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/msock/munge.sock
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/slurmd-%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/{proctrack}
TaskPlugin=task/{task}
JobAcctGatherType=jobacct_gather/none
{accounting}
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters={select}
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
MinJobAge={min_job_age}
# every task of a pending array counts (default 10000): room for 10,000-job sweeps and more
MaxJobCount=50000
MailProg=/bin/true
FirstJobId={first_job_id}
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=64000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
# Memory as a consumable resource, enforced by the kernel (cgroup v1 memory controller).
CGROUP_CONF = """\
CgroupPlugin=cgroup/v1
CgroupAutomount=no
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes
"""
MEMORY_CGROUP = Path("/sys/fs/cgroup/memory")
NO_ACCOUNTING = "AccountingStorageType=accounting_storage/none"

# -- accounting: slurmdbd on a private MariaDB (docs/notes/slurmdbd-mariadb.md) ----------

ACCOUNTING_TOOLS = ("mariadb-install-db", "mariadbd", "mariadb", "slurmdbd", "sacctmgr", "sacct")
# slurmctld and the client commands (sacct, sacctmgr) authenticate to slurmdbd with the
# munge socket named in AccountingStoragePass, not AuthInfo's (they would use munge's
# default socket otherwise). slurmctld registers the cluster itself: no sacctmgr needed.
SLURM_ACCOUNTING = """\
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={dbd_port}
AccountingStoragePass={root}/msock/munge.sock"""
# slurmdbd reads slurmdbd.conf from $SLURM_CONF's directory; it must be 0600 and owned
# by SlurmUser. DbdHost must be `hostname -s` or "localhost" (else it acts as a backup).
SLURMDBD_CONF = """\
AuthType=auth/munge
AuthInfo=socket={root}/msock/munge.sock
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={dbd_port}
SlurmUser=root
LogFile={root}/log/slurmdbd.log
PidFile={root}/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={db_port}
StorageUser={db_user}
StoragePass={db_pass}
StorageLoc={db_name}
"""
DB_NAME, DB_USER = "slurm_acct_db", "slurm"
# --no-defaults first: Debian's /etc/mysql/my.cnf would point at /var/lib/mysql. As root,
# mariadbd refuses to start without --user=root. Native AIO (io_uring/libaio) off: container
# seccomp profiles may block io_uring, and a test database needs no speed there.
MARIADB_COMMON = ("--no-defaults", "--user=root", "--skip-name-resolve", "--innodb-use-native-aio=0")


def world_dir(prefix: str) -> Path:
    """A temp dir under /tmp, mode 755 (munged wants every parent world-executable)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def missing_slurm_daemons() -> list[str]:
    """The programs a private Slurm needs that are not on PATH (Debian: slurm-wlm, munge)."""
    return [tool for tool in SLURM_DAEMONS if shutil.which(tool) is None]


@dataclass
class SlurmCluster:
    """A running private Slurm; client commands need :attr:`env` (its ``SLURM_CONF``).

    ``base`` holds what the Slurm daemons need (munged, and with accounting mariadbd and
    slurmdbd), started first and stopped last, in reverse; ``procs`` the Slurm daemons.
    """

    root: Path
    conf: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    base: list[subprocess.Popen[bytes]] = field(default_factory=list)
    dbd_port: int | None = None  # slurmdbd's, when started with accounting

    @property
    def accounting(self) -> bool:
        """Whether a slurmdbd keeps this cluster's jobs (``sacct`` answers)."""
        return self.dbd_port is not None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, check=False, timeout=60)

    def wait_idle(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.run("sinfo", "-h", "-N", "-o", "%t").stdout.strip() == "idle":
                return
            time.sleep(0.1)
        logs = (self.root / "log" / "slurmctld.log").read_text(errors="replace")[-2000:]
        raise BackendUnavailable(f"private Slurm node did not become idle in {timeout:.0f} s:\n{logs}")

    def cancel_all(self, timeout: float = 15.0) -> None:
        """Cancel every job of this user and wait until none is left running or pending."""
        self.run("scancel", f"--user={os.getuid()}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.run("squeue", "-h", "-t", "PD,R,CG", "-o", "%i").stdout.strip():
                return
            time.sleep(0.2)

    def stop(self) -> None:
        """Cancel what still runs, terminate slurmd and slurmctld, then slurmdbd, mariadbd and
        munged (each reaped before the next: slurmctld sends its last records to slurmdbd,
        which would log errors without its database), remove the directory. Jobs left
        running would outlive slurmd as orphaned ``slurmstepd``s."""
        if self.procs and all(proc.poll() is None for proc in self.procs):
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self.cancel_all()
        _terminate(self.procs)
        for proc in reversed(self.base):
            _terminate([proc])
        self.procs.clear()
        self.base.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def _terminate(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM all of ``procs`` at once, then reap them (SIGKILL after 15 s)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def memory_cgroup_problem() -> str:
    """Why a private Slurm could not confine jobs' memory here ("" when it can)."""
    if not (MEMORY_CGROUP / "tasks").is_file():
        return f"no cgroup v1 memory controller at {MEMORY_CGROUP}"
    if not os.access(MEMORY_CGROUP, os.W_OK):
        return f"{MEMORY_CGROUP} is not writable"
    return ""


def missing_accounting_tools() -> list[str]:
    """The programs accounting needs that are not on PATH (Debian: slurmdbd, mariadb-server)."""
    return [tool for tool in ACCOUNTING_TOOLS if shutil.which(tool) is None]


def _slurm_dirs(cpus: int, min_job_age: int, enforce_memory: bool, dbd_port: int | None) -> SlurmCluster:
    root = world_dir("cops-slurm-")
    for sub, mode in (("mkey", 0o700), ("msock", 0o755), ("state", 0o755), ("spool", 0o755), ("log", 0o755)):
        (root / sub).mkdir(mode=mode)
        (root / sub).chmod(mode)
    conf = root / "slurm.conf"
    host = socket.gethostname().split(".")[0]  # NodeName must be `hostname -s` for slurmd
    plugins = {"proctrack": "linuxproc", "task": "none", "select": "CR_Core", "first_job_id": 1}
    if enforce_memory:
        # slurmd's cgroups are named slurm_<host>/uid_<u>/job_<id>: a random first id keeps
        # two private clusters on one host (tests beside a benchmark) out of each other's.
        first = random.randint(1_000_000, 60_000_000)  # noqa: S311 (not security relevant)
        plugins = {"proctrack": "cgroup", "task": "cgroup", "select": "CR_Core_Memory", "first_job_id": first}
        (root / "cgroup.conf").write_text(CGROUP_CONF)  # read from slurm.conf's directory
    accounting = NO_ACCOUNTING if dbd_port is None else SLURM_ACCOUNTING.format(root=root, dbd_port=dbd_port)
    conf.write_text(
        SLURM_CONF.format(host=host, root=root, cpus=cpus, ctld_port=free_port(), slurmd_port=free_port(),
                          min_job_age=min_job_age, accounting=accounting, **plugins)
    )  # fmt: skip
    return SlurmCluster(root=root, conf=conf, dbd_port=dbd_port)


def _start_munged(cluster: SlurmCluster) -> None:
    root = cluster.root
    key, sock = root / "mkey" / "munge.key", root / "msock" / "munge.sock"
    subprocess.run(["mungekey", "-c", "-k", str(key)], check=True, capture_output=True)
    argv = ["munged", "-F", f"--key-file={key}", f"--socket={sock}", f"--pid-file={root}/mkey/munged.pid",
            f"--log-file={root}/mkey/munged.log", f"--seed-file={root}/mkey/munged.seed"]  # fmt: skip
    cluster.base.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def _log_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return f"(no {path.name})"


@dataclass
class PrivateMariaDB:
    """A mariadbd private to one datadir: own socket, TCP on 127.0.0.1:``port`` only.

    Root logs in over the socket (unix_socket auth, no password anywhere); :meth:`sql`
    feeds statements on stdin, so passwords in them stay off every argv.
    """

    datadir: Path
    port: int
    proc: subprocess.Popen[bytes]
    log_file: Path

    @property
    def socket(self) -> Path:
        return self.datadir / "mysqld.sock"

    def client(self, *args: str) -> list[str]:
        return ["mariadb", "--no-defaults", f"--socket={self.socket}", "--user=root", "--batch", *args]

    def sql(self, text: str, *, database: str | None = None, what: str = "SQL") -> str:
        """Run ``text`` as root; BackendUnavailable (naming ``what``) when it fails."""
        argv = self.client(*([database] if database else []))
        done = subprocess.run(argv, input=text, capture_output=True, text=True, check=False, timeout=60)
        if done.returncode != 0:
            raise BackendUnavailable(f"{what} failed: {done.stderr.strip()}")
        return done.stdout

    def stop(self) -> None:
        _terminate([self.proc])


def start_mariadb(datadir: Path, log_file: Path, *, timeout: float = 60.0) -> PrivateMariaDB:
    """Initialise ``datadir`` (which must not exist yet) and start mariadbd on 127.0.0.1:<free
    port>; returns once root gets an answer (docs/notes/slurmdbd-mariadb.md). Its temporary
    files go to ``<datadir>.tmp``, not /tmp: another server there may delete them."""
    tmpdir = datadir.with_name(datadir.name + ".tmp")
    tmpdir.mkdir(mode=0o700)
    init = subprocess.run(
        ["mariadb-install-db", *MARIADB_COMMON, f"--datadir={datadir}", f"--tmpdir={tmpdir}",
         "--auth-root-authentication-method=socket", "--skip-test-db"],
        capture_output=True, text=True, check=False, timeout=timeout,
    )  # fmt: skip
    if init.returncode != 0:
        raise BackendUnavailable(f"mariadb-install-db failed:\n{(init.stdout + init.stderr)[-2000:]}")
    port = free_port()
    argv = ["mariadbd", *MARIADB_COMMON, f"--datadir={datadir}", f"--tmpdir={tmpdir}",
            f"--socket={datadir}/mysqld.sock", f"--port={port}", "--bind-address=127.0.0.1",
            f"--pid-file={datadir}/mariadbd.pid", f"--log-error={log_file}", "--innodb-buffer-pool-size=32M",
            "--innodb-lock-wait-timeout=900", "--innodb-flush-log-at-trx-commit=0"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = PrivateMariaDB(datadir=datadir, port=port, proc=proc, log_file=log_file)
    ping = db.client("-e", "SELECT 1")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if subprocess.run(ping, capture_output=True, check=False, timeout=30).returncode == 0:
            return db
        time.sleep(0.05)
    db.stop()
    raise BackendUnavailable(f"private mariadbd did not answer:\n{_log_tail(log_file)}")


def _start_mariadb(cluster: SlurmCluster, timeout: float = 60.0) -> None:
    """Start a private mariadbd under the cluster's root, create slurmdbd's database and user
    (random password), write slurmdbd.conf."""
    db = start_mariadb(cluster.root / "db", cluster.root / "log" / "mariadbd.log", timeout=timeout)
    cluster.base.append(db.proc)
    password = secrets.token_hex(16)
    db.sql(
        f"CREATE DATABASE {DB_NAME};\n"
        f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
        f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1';\n",
        what="creating slurmdbd's database",
    )  # on stdin, so the password is not on an argv
    _write_private(
        cluster.root / "slurmdbd.conf",
        SLURMDBD_CONF.format(root=cluster.root, dbd_port=cluster.dbd_port, db_port=db.port, db_user=DB_USER,
                             db_pass=password, db_name=DB_NAME),
    )  # fmt: skip


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` mode 0600 from its creation (it holds the database password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _start_slurmdbd(cluster: SlurmCluster, timeout: float = 60.0) -> None:
    """Start slurmdbd (it finds slurmdbd.conf beside $SLURM_CONF) and wait until sacctmgr gets
    an answer: by then it has created its tables."""
    out = (cluster.root / "log" / "slurmdbd.out").open("wb")
    proc = subprocess.Popen(["slurmdbd", "-D"], env=cluster.env, stdout=out, stderr=out)
    out.close()
    cluster.base.append(proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if cluster.run("sacctmgr", "--noheader", "--parsable2", "list", "cluster").returncode == 0:
            return
        time.sleep(0.05)
    raise BackendUnavailable(
        f"private slurmdbd did not answer:\n{_log_tail(cluster.root / 'log' / 'slurmdbd.log')}"
    )


def start_slurm(
    *, cpus: int = 64, min_job_age: int = 30, enforce_memory: bool = False, accounting: bool = False
) -> SlurmCluster:
    """Start munged, slurmctld and slurmd under a fresh /tmp dir; returns when the node is idle.

    ``cpus`` is declared with ``config_overrides``, so it may exceed the real cores: Slurm
    then starts that many trivial jobs at once instead of queueing them behind the cores.
    ``enforce_memory`` makes memory a consumable resource confined by cgroups (task/cgroup,
    as production sites run it; see :func:`memory_cgroup_problem`); otherwise ``--mem``
    is neither scheduled nor enforced (task/none, no cgroups touched). ``accounting`` also
    starts a private mariadbd and a slurmdbd on it (before slurmctld, which registers the
    cluster), so ``sacct`` answers for jobs slurmctld has forgotten (about 1-4 s more).
    """
    missing = missing_slurm_daemons()
    if missing:
        raise BackendUnavailable(
            f"{', '.join(missing)} not installed",
            backend="slurm",
            hint="install Debian's slurm-wlm and munge",
        )
    if accounting and (missing := missing_accounting_tools()):
        raise BackendUnavailable(
            f"{', '.join(missing)} not installed",
            backend="slurm",
            hint="install Debian's slurmdbd and mariadb-server (for accounting)",
        )
    cluster = _slurm_dirs(cpus, min_job_age, enforce_memory, free_port() if accounting else None)
    try:
        _start_munged(cluster)
        if accounting:
            started = time.monotonic()
            _start_mariadb(cluster)
            _start_slurmdbd(cluster)
            log.info("private mariadbd + slurmdbd answered in %.1f s", time.monotonic() - started)
        for daemon in (["slurmctld", "-D", "-c"], ["slurmd", "-D"]):
            out = (cluster.root / "log" / f"{daemon[0]}.out").open("wb")
            cluster.procs.append(
                subprocess.Popen([*daemon, "-f", str(cluster.conf)], env=cluster.env, stdout=out, stderr=out)
            )
            out.close()
        cluster.wait_idle()
    except BaseException:
        cluster.stop()
        raise
    return cluster
