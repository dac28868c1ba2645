"""A real OpenSSH server on 127.0.0.1 for test sessions: a login node in front of the test Slurm.

Debian's ``sshd`` (openssh-server), started by :func:`start_sshd` without systemd on a free
port, with a throwaway host key, a throwaway test user (``cops-ssh-<hex>``, created with
``useradd`` and removed by :meth:`SshServer.stop`) and a throwaway client key. The user's
home is inside the fixture's directory, so ``StrictModes`` holds (see
docs/notes/sshd-fixture.md for what running sshd as a fixture needs). The Slurm client
commands on this machine are the login node's: jobs submitted through it run as the test
user, in job directories that only the remote side writes.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.services.slurm import free_port, world_dir

SSHD = Path("/usr/sbin/sshd")  # sshd re-executes itself: it must be started by its absolute path
PRIVSEP_DIR = Path("/run/sshd")  # compiled in; Debian's init script or systemd unit creates it


def missing_sshd_tools() -> list[str]:
    missing = [] if SSHD.is_file() else ["sshd (openssh-server)"]
    return missing + [t for t in ("ssh", "ssh-keygen", "useradd", "userdel") if shutil.which(t) is None]


@dataclass
class SshServer:
    """A running sshd; ``key`` and ``known_hosts`` are the client side's (root's, 0600)."""

    root: Path
    port: int
    user: str
    home: Path
    key: Path
    known_hosts: Path
    host_key: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    made_user: bool = False

    @property
    def destination(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    @property
    def uid(self) -> int:
        return pwd.getpwnam(self.user).pw_uid

    @property
    def known_hosts_name(self) -> str:
        return f"[127.0.0.1]:{self.port}"

    def logins(self) -> int:
        """How many connections the server has accepted (one per ``Accepted publickey``)."""
        return self.log.read_text(errors="replace").count("Accepted publickey for")

    def throwaway_key(self, name: str) -> Path:
        """Another client key (0600) that the server does not know."""
        path = self.root / "client" / name
        _keygen(path, f"cops-test-{name}")
        return path

    def stop(self) -> None:
        """Stop the sessions sshd started (by their ids), then sshd, then remove the user."""
        if self.proc is not None:
            for pid in _descendants(self.proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None
        if self.made_user:
            for _ in range(20):  # a session process may still be on its way out
                done = subprocess.run(["userdel", self.user], capture_output=True, text=True, check=False)
                if done.returncode in (0, 6):  # 6: no such user
                    break
                time.sleep(0.25)
            self.made_user = False
        shutil.rmtree(self.root, ignore_errors=True)


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    path.chmod(0o600)


def _descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (sshd's per-connection children and theirs)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, uid, gid)
        for name in [*dirnames, *filenames]:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def start_sshd(timeout: float = 15.0) -> SshServer:
    """Start sshd for a new test user on 127.0.0.1; returns once it accepts connections."""
    root = world_dir("cops-sshd-")  # 0755, root's: StrictModes walks up to the user's home
    user = f"cops-ssh-{secrets.token_hex(3)}"
    home = root / "home"
    (root / "client").mkdir(mode=0o700)
    server = SshServer(
        root=root,
        port=free_port(),
        user=user,
        home=home,
        key=root / "client" / "id_ed25519",
        known_hosts=root / "client" / "known_hosts",
        host_key=root / "host_ed25519",
        log=root / "sshd.log",
    )
    try:
        _keygen(server.host_key, "cops-test-host")
        _keygen(server.key, "cops-test-client")
        host_pub = " ".join(server.host_key.with_suffix(".pub").read_text().split()[:2])
        server.known_hosts.write_text(f"{server.known_hosts_name} {host_pub}\n")
        server.known_hosts.chmod(0o600)
        # '*' as the password: no password login, yet not "locked" ('!'), which sshd refuses without PAM
        subprocess.run(
            ["useradd", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/sh",
             "--password", "*", "--user-group", user],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        server.made_user = True
        info = pwd.getpwnam(user)
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "authorized_keys").write_text(server.key.with_suffix(".pub").read_text())
        _chown_tree(home, info.pw_uid, info.pw_gid)
        home.chmod(0o750)
        (home / ".ssh").chmod(0o700)
        (home / ".ssh" / "authorized_keys").chmod(0o600)
        config = root / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress 127.0.0.1:{server.port}",
                    f"HostKey {server.host_key}",
                    f"PidFile {root / 'sshd.pid'}",
                    "UsePAM no",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin no",
                    f"AllowUsers {user}",
                    "AuthorizedKeysFile .ssh/authorized_keys",
                    "StrictModes yes",
                    "X11Forwarding no",
                    "AllowTcpForwarding no",
                    "AllowAgentForwarding no",
                    "PermitUserEnvironment no",
                    "PrintMotd no",
                    "MaxSessions 50",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        out = server.log.open("wb")
        server.proc = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        out.close()
        _wait_listening(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_listening(server: SshServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.proc is not None
        if server.proc.poll() is not None:
            raise RuntimeError(f"sshd exited at start: {server.log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(
        f"sshd did not listen within {timeout:.0f} s: {server.log.read_text(errors='replace')}"
    )
