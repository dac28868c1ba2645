"""VOMS for the tests: proxies made by ``voms-proxy-fake``, and a real VOMS server.

The test CA is the one the A-REX package sets up (``arcctl test-ca``); the host cert
doubles as the AC signer, as in ../shared/notes/arc-ce-local.md. Proxies are written
0600 like the real tools do; tests loosen the mode themselves when they need to.

:func:`start_voms_server` runs Debian's ``voms`` daemon (voms-server) on its MySQL
plugin (voms-mysql-plugin) and a private MariaDB (``start_mariadb``, shared with the
Slurm accounting), on 127.0.0.1 and free ports, with the test CA's host certificate, for
one VO with a group and a role; :attr:`VomsServer.env` points the clients at it
(``vomses`` and ``vomsdir`` in a private directory, nothing under /etc). Recipe and
quirks: docs/notes/voms-server.md.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from computeops_grid.bench.daemons import PrivateMariaDB, free_port, start_mariadb

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


# -- a real VOMS server (docs/notes/voms-server.md) ------------------------------------

VOMS_TOOLS = ("voms", "mariadb-install-db", "mariadbd", "mariadb", "arcctl")
VOMS_SCHEMA = Path("/usr/share/voms/voms-mysql.data")  # voms-mysql-plugin: the version-2 tables
VOMS_PLUGIN = Path("/usr/lib/voms/libvomsmysql.so")
DB_NAME, DB_USER = "voms_vo", "voms"
# What voms_install_db puts in a fresh database, minus its /etc and OpenSSL-1 assumptions:
# the virtual CAs 1-5, the VO's root group, the VO-Admin role, the AC serial, schema version 2.
BOOTSTRAP = """\
INSERT INTO ca VALUES (1, '/O=VOMS/O=System/CN=Dummy Certificate Authority', 'dummy'),
  (2, '/O=VOMS/O=System/CN=Authorization Manager Attributes', 'authz'),
  (3, '/O=VOMS/O=System/CN=VOMS Group', 'group'), (4, '/O=VOMS/O=System/CN=VOMS Role', 'role'),
  (5, '/O=VOMS/O=System/CN=VOMS Capability', 'capability');
INSERT INTO admins VALUES (1, '/O=VOMS/O=System/CN=Local Database Administrator', '', 1);
INSERT INTO groups VALUES (1, '/{vo}', 1, 1);
INSERT INTO roles VALUES (1, 'VO-Admin');
INSERT INTO seqnumber VALUES ('00');
INSERT INTO version (version) VALUES (2);
"""
# The daemon's options file (one option a line). No --newformat although voms_install_db
# writes it: arcproxy rejects such ACs ("the holder name in AC is not related to the
# distinguished name in holder certificate"). --uri fixes the AC's uri, whose host part
# names the client's .lsc file; by default it is `hostname`:port.
VOMS_CONF = """\
--vo={vo}
--port={port}
--uri=127.0.0.1:{port}
--dbname={db_name}
--username={db_user}
--passfile={passfile}
--sqlloc={plugin}
--contactstring=127.0.0.1
--mysql-port={db_port}
--x509_user_cert={hostcert}
--x509_user_key={hostkey}
--x509_cert_dir={certs}
--logfile={log}
--loglevel=4
--timeout=86400
--base64
"""


def openssl_dn(cert: Path, which: str = "subject") -> str:
    """A certificate's subject or issuer in the slash form VOMS compares (``/DC=org/...``);
    OpenSSL 3's default form (``DC = org, ...``) is what voms_install_db would store."""
    out = subprocess.run(
        ["openssl", "x509", "-noout", f"-{which}", "-nameopt", "compat", "-in", str(cert)],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout  # fmt: skip
    return out.split("=", 1)[1].strip()


def _quote(text: str) -> str:
    """An SQL string literal (MariaDB's default escapes: backslash and quote)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def missing_voms_tools() -> list[str]:
    """What the VOMS server needs that is not installed (Debian: voms-server, voms-mysql-plugin,
    mariadb-server, nordugrid-arc-arcctl for the test CA)."""
    missing = [tool for tool in VOMS_TOOLS if shutil.which(tool) is None]
    return missing + [str(path) for path in (VOMS_SCHEMA, VOMS_PLUGIN) if not path.exists()]


@dataclass
class VomsServer:
    """A running ``voms`` for one VO; clients reach it through :attr:`env`."""

    root: Path  # 0700: the options file, the DB password file, logs, the database
    vo: str
    port: int
    db: PrivateMariaDB
    proc: subprocess.Popen[bytes] | None = None
    groups: dict[str, int] = field(default_factory=dict)  # group -> gid
    roles: dict[str, int] = field(default_factory=dict)  # role -> rid
    users: int = 0

    @property
    def vomses(self) -> Path:
        return self.root / "client" / "vomses"

    @property
    def vomsdir(self) -> Path:
        return self.root / "client" / "vomsdir"

    @property
    def log(self) -> Path:
        return self.root / "log" / "voms.log"

    @property
    def env(self) -> dict[str, str]:
        """What the clients need: voms-proxy-init reads ``VOMS_USERCONF``, arcproxy
        ``X509_VOMSES``; both verify the AC against ``X509_VOMS_DIR``."""
        return {
            "VOMS_USERCONF": str(self.vomses),
            "X509_VOMSES": str(self.vomses),
            "X509_VOMS_DIR": str(self.vomsdir),
            "X509_CERT_DIR": str(CERTS),
        }

    def add_group(self, group: str) -> None:
        """``/<vo>/<group>`` under the VO's root group."""
        gid = max(self.groups.values(), default=1) + 1
        self.db.sql(
            f"INSERT INTO groups VALUES ({gid}, {_quote(f'/{self.vo}/{group}')}, 1, 0);",
            database=DB_NAME, what=f"adding group {group}",
        )  # fmt: skip
        self.groups[group] = gid

    def add_role(self, role: str) -> None:
        rid = max(self.roles.values(), default=1) + 1
        sql = f"INSERT INTO roles VALUES ({rid}, {_quote(role)});"
        self.db.sql(sql, database=DB_NAME, what=f"adding role {role}")
        self.roles[role] = rid

    def add_user(self, cert: Path, *, groups: tuple[str, ...] = (), roles: tuple[str, ...] = ()) -> str:
        """Register the certificate's subject (issued by the test CA) as a member of the VO, of
        ``groups`` and with ``roles`` in the VO's root group; returns the subject."""
        self.users += 1
        uid, dn = self.users, openssl_dn(cert)
        cn = dn.rsplit("=", 1)[-1]
        rows = [f"({uid}, 1, NULL)"] + [f"({uid}, {self.groups[g]}, NULL)" for g in groups]
        rows += [f"({uid}, 1, {self.roles[r]})" for r in roles]
        self.db.sql(  # ca 6: the test CA (see _setup_database)
            f"INSERT INTO usr (userid, dn, ca, cn) VALUES ({uid}, {_quote(dn)}, 6, {_quote(cn)});\n"
            f"INSERT INTO m (userid, gid, rid) VALUES {', '.join(rows)};\n",
            database=DB_NAME, what=f"registering {dn}",
        )  # fmt: skip
        return dn

    def stop(self) -> None:
        """Stop voms (its per-request children end with their connection), then mariadbd."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.db.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _write(path: Path, text: str, mode: int) -> None:
    """Write ``path`` with ``mode`` from its creation (no moment with looser permissions)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, mode)  # the umask may have taken bits away


def start_voms_server(vo: str = "testvo", *, timeout: float = 60.0) -> VomsServer:
    """Start a VOMS server for ``vo`` on 127.0.0.1; returns once it accepts connections.

    Root only: ``voms`` reads the test CA's host key (0400 root) and mariadbd runs as root.
    Members are added afterwards (:meth:`VomsServer.add_user`): the daemon reads the
    database on every request."""
    ensure_test_ca()
    root = Path(tempfile.mkdtemp(prefix="cops-voms-", dir="/tmp"))  # 0700
    for sub in ("log", "client", "client/vomsdir", f"client/vomsdir/{vo}"):
        (root / sub).mkdir(mode=0o755)
    try:
        db = start_mariadb(root / "db", root / "log" / "mariadbd.log", timeout=timeout)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    server = VomsServer(root=root, vo=vo, port=free_port(), db=db)
    try:
        _setup_database(server)
        _start_daemon(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _setup_database(server: VomsServer) -> None:
    """The schema, the bootstrap rows, the test CA as CA 6, and a read-only account whose
    random password goes to the daemon's password file only (fed to mariadb on stdin)."""
    password, ca = secrets.token_hex(16), openssl_dn(HOSTCERT, "issuer")
    server.db.sql(  # one client run: the schema's 20 tables and the rows
        f"CREATE DATABASE {DB_NAME};\n"
        f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
        f"GRANT SELECT, LOCK TABLES ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1';\n"
        f"USE {DB_NAME};\n"
        + VOMS_SCHEMA.read_text() + "\n"
        + BOOTSTRAP.format(vo=server.vo)
        + f"INSERT INTO ca VALUES (6, {_quote(ca)}, 'test CA');\n",
        what="creating the VOMS database",
    )  # fmt: skip
    # voms insists on mode 0640 exactly and on a final newline; the directory is 0700
    _write(server.root / "voms.pass", password + "\n", 0o640)


def _start_daemon(server: VomsServer, timeout: float) -> None:
    """Write the options file and the client's vomses and .lsc, start ``voms --debug`` (which
    stays in the foreground: without it the daemon forks away and setsid()s, with or
    without --foreground), wait until its port accepts."""
    conf = server.root / "voms.conf"
    _write(
        conf,
        VOMS_CONF.format(vo=server.vo, port=server.port, db_name=DB_NAME, db_user=DB_USER,
                         passfile=server.root / "voms.pass", plugin=VOMS_PLUGIN, db_port=server.db.port,
                         hostcert=HOSTCERT, hostkey=HOSTKEY, certs=CERTS, log=server.log),
        0o600,
    )  # fmt: skip
    host_dn, ca_dn = openssl_dn(HOSTCERT), openssl_dn(HOSTCERT, "issuer")
    # vomses 0644 as voms-proxy-init(1) asks (0600 works too); neither client checks the DN
    # in it: the trust is the .lsc file, named after the host part of the AC's uri (--uri)
    _write(server.vomses, f'"{server.vo}" "127.0.0.1" "{server.port}" "{host_dn}" "{server.vo}"\n', 0o644)
    _write(server.vomsdir / server.vo / "127.0.0.1.lsc", f"{host_dn}\n{ca_dn}\n", 0o644)
    out = (server.root / "log" / "voms.out").open("wb")
    argv = ["voms", "--conf", str(conf), "--debug"]
    server.proc = subprocess.Popen(argv, cwd=server.root, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    out.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.proc.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        time.sleep(0.05)
    said = (server.root / "log" / "voms.out").read_text(errors="replace")
    logged = server.log.read_text(errors="replace") if server.log.exists() else ""
    raise RuntimeError(f"voms did not start (exit {server.proc.poll()}):\n{said}\n{logged[-2000:]}")
