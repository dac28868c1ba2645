"""Commands and files on a login node over SSH, through the one tool runner.

Why the OpenSSH client (``ssh``) and not asyncssh or paramiko: a login node is reached the
way its users already reach it. ``ssh`` reads their ``~/.ssh/config`` (``ProxyJump``
through a gateway, ``Match`` blocks, certificates), their agent, hardware and GSSAPI keys,
and their ``known_hosts`` with ``@cert-authority`` and hashed entries; a Python SSH library
re-implements a part of that and adds a dependency to the base install. ``ssh`` also fits
the one runner (:func:`~computeops_grid.backends.common.tools.run_tool`): an argv list,
a time limit, an exit status; so the delivery model is the same as for a local ``sbatch``.

* **One connection per resource, reused.** Every command runs with ``ControlMaster=auto``
  and a ``ControlPath`` named by a hash of the resource's SSH settings, in a private (0700)
  directory: the first command opens the connection, later ones (in this process and in
  the next ``cops-grid`` command, for ``ssh_persist`` seconds) run over it in milliseconds.
  Two processes starting at once each succeed: ssh falls back to a connection of its own.
* **Remote command lines are quoted.** ``ssh`` joins its arguments into one command line
  for the login shell, so every remote argument goes through :func:`shlex.quote` and a
  file name or job argument can never become shell syntax there. The login shell must
  be a POSIX one (sh, bash, zsh, ksh), as on every Linux cluster.
* **Host keys are always checked** (``StrictHostKeyChecking=yes``, on the command line, so
  no configuration file can turn it off) and never accepted or replaced by cops-grid;
  options that would weaken that are refused in the settings. ``BatchMode=yes``: never a
  prompt (an encrypted key belongs in the agent).
* **What ssh's exit status 255 means for the delivery model.** The connection was never
  made (refused, unresolvable, timed out, the server closed it before login): *not sent*.
  The host key did not match or is unknown, or every key was refused: a
  :class:`~computeops_grid.errors.CredentialError` with a hint, never retried (nothing was
  sent). Anything else (the connection dropped while the command ran): *may have arrived*:
  a submit is never repeated, ``cops-grid sync`` asks the cluster. A remote exit status 127
  or 126 (the tool is not on the login node's PATH) is :class:`ToolMissing`.
* **Files** travel as tar streams over the same connection (GNU tar on the login node):
  job directories up, outputs and the small status files down. What comes down is
  unpacked with :func:`tarfile.data_filter` (nothing lands outside the destination).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shlex
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from computeops_grid.backends.common.tools import ToolErrors, last_line, run_tool
from computeops_grid.errors import (
    BackendError,
    BackendUnavailable,
    ConfigError,
    CredentialError,
    Delivery,
    DeliveryUncertain,
    ToolMissing,
)

log = logging.getLogger(__name__)

SSH_INSTALL_HINT = "install the OpenSSH client (Debian: openssh-client)"

# Options cops-grid sets itself, or that would weaken host key checking: refused in ssh_options.
RESERVED_OPTIONS = frozenset(
    {
        "stricthostkeychecking",  # always yes
        "userknownhostsfile",  # the known_hosts setting
        "globalknownhostsfile",
        "knownhostscommand",
        "verifyhostkeydns",
        "updatehostkeys",
        "batchmode",  # always yes: no prompts
        "controlmaster",  # the connection sharing is ours
        "controlpath",
        "controlpersist",
        "permitlocalcommand",
        "localcommand",
        "identityfile",  # the ssh_key setting
        "port",  # in `ssh:`
        "user",
        "hostname",
    }
)
_OPTION = re.compile(r"([A-Za-z][A-Za-z0-9]*)=(\S.*)")
_USER = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,63}")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_IPV6 = re.compile(r"\[([0-9A-Fa-f:.]+)\]")

# ssh's own failures (exit status 255), by what they mean for delivery. Only ssh's own wording
# counts (whole lines): a remote command's stderr comes back on the same stream.
_NEVER_CONNECTED = re.compile(
    r"^(ssh: connect to host \S+ port \d+: "  # refused, timed out, no route, network unreachable
    r"|ssh: Could not resolve hostname "
    r"|kex_exchange_identification: "
    r"|Connection timed out during banner exchange"
    r"|Connection (closed|reset) by \S+ port \d+"  # before login (after it: "Connection to X closed")
    r"|command-line: line \d+: |.*: line \d+: Bad configuration option"
    r"|Bad owner or permissions on |Can't open user config file )",
    re.MULTILINE,
)
_HOSTKEY_CHANGED = (
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "has changed and you have requested strict checking",
)
_HOSTKEY = ("Host key verification failed",)
_KEY_REFUSED = ("Permission denied (", "Too many authentication failures", "no mutual signature algorithm")


@dataclass(frozen=True)
class Destination:
    """``user@host[:port]`` (``[v6addr]:port`` for IPv6); the user and port are optional."""

    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> Destination:
        user, sep, rest = text.rpartition("@")
        if not sep:
            user, rest = "", text
        port: int | None = None
        v6 = _IPV6.match(rest)
        if v6:
            host, tail = v6.group(1), rest[v6.end() :]
            if tail:
                if not tail.startswith(":") or not tail[1:].isdigit():
                    raise ValueError(f"{text!r}: expected user@[address]:port")
                port = int(tail[1:])
        else:
            host, sep, port_text = rest.partition(":")
            if sep:
                if not port_text.isdigit():
                    raise ValueError(f"{text!r}: the port must be a number (user@host:port)")
                port = int(port_text)
            if not _HOST.fullmatch(host):
                raise ValueError(f"{text!r}: {host!r} is not a host name or address (user@host[:port])")
        if user and not _USER.fullmatch(user):
            raise ValueError(f"{text!r}: {user!r} is not a user name (user@host[:port])")
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"{text!r}: port {port} is out of range (user@host[:port])")
        return cls(host=host, user=user or None, port=port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        where = f"{host}:{self.port}" if self.port else host
        return f"{self.user}@{where}" if self.user else where

    @property
    def known_hosts_name(self) -> str:
        """How ``known_hosts`` names this host (``[host]:port`` for a port other than 22)."""
        return f"[{self.host}]:{self.port}" if self.port not in (None, 22) else self.host


def check_options(options: Sequence[str]) -> list[str]:
    """Validate ``ssh_options`` (``Name=value`` each); returns them unchanged."""
    for option in options:
        match = _OPTION.fullmatch(option)
        if not match:
            raise ValueError(f"ssh option {option!r}: expected Name=value (an ssh_config option)")
        if match.group(1).lower() in RESERVED_OPTIONS:
            raise ValueError(
                f"ssh option {match.group(1)} is set by cops-grid (host keys are always checked; "
                "use the ssh, ssh_key and known_hosts settings)"
            )
    return list(options)


def default_control_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "cops-grid-ssh"
    return Path.home() / ".ssh" / "cops-grid"


class LoginNode:
    """One login node of one resource: its ssh argv, its shared connection, its files."""

    def __init__(
        self,
        destination: Destination,
        *,
        family: str,
        key: str | None = None,
        known_hosts: str | None = None,
        config: str | None = None,
        options: Sequence[str] = (),
        control_dir: str | None = None,
        persist: int = 600,
        connect_timeout: float = 15.0,
    ) -> None:
        self.destination = destination
        self.family = family
        self.key = Path(key).expanduser() if key else None
        self.known_hosts = Path(known_hosts).expanduser() if known_hosts else None
        self.config = Path(config).expanduser() if config else None
        self.options = list(options)
        self.control_dir = Path(control_dir).expanduser() if control_dir else default_control_dir()
        self.persist = persist
        self.connect_timeout = connect_timeout
        self.errors = ToolErrors(family=family, install_hint=SSH_INSTALL_HINT)
        if len(str(self.control_path)) > 90:  # sun_path is 108 bytes; ssh adds a 17-byte suffix
            raise ConfigError(
                f"ssh control socket path {self.control_path} is too long for a Unix socket",
                hint="set ssh_control_dir to a shorter directory (e.g. /tmp/cops-ssh)",
            )

    # -- the ssh command line -----------------------------------------------------------

    @property
    def control_path(self) -> Path:
        """The resource's connection socket, named by everything that shapes the connection."""
        identity = repr((str(self.destination), self.key, self.known_hosts, self.config, self.options))
        return self.control_dir / hashlib.sha256(identity.encode()).hexdigest()[:20]

    def ssh_argv(self) -> list[str]:
        """``ssh`` with this resource's options, up to (not including) the destination."""
        argv = ["ssh", "-T", "-x", "-a"]
        if self.config:
            argv += ["-F", str(self.config)]
        argv += [
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"ConnectTimeout={max(1, round(self.connect_timeout))}",
            "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=3",
            "-o", "ControlMaster=auto",
            "-o", f"ControlPath={self.control_path}",
            "-o", f"ControlPersist={self.persist}",
        ]  # fmt: skip
        if self.known_hosts:
            argv += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.key:
            argv += ["-i", str(self.key), "-o", "IdentitiesOnly=yes"]
        for option in self.options:
            argv += ["-o", option]
        if self.destination.port:
            argv += ["-p", str(self.destination.port)]
        if self.destination.user:
            argv += ["-l", self.destination.user]
        return argv

    def command(self, remote: Sequence[str]) -> list[str]:
        """The full argv running ``remote`` on the login node, each argument quoted for its shell."""
        if not remote:
            raise ValueError("no remote command")
        return [*self.ssh_argv(), "--", self.destination.host, shlex.join(remote)]

    # -- preconditions --------------------------------------------------------------------

    def _prepare(self) -> None:
        """The private socket directory, and the key file's safety, before any connection."""
        _private_dir(self.control_dir, self.family)
        if self.key is not None:
            try:
                info = self.key.stat()
            except OSError as exc:
                raise CredentialError(
                    f"{self.family}: ssh_key {self.key}: {exc.strerror}",
                    hint="ssh_key names the private key file that the login node accepts",
                ) from None
            if info.st_mode & 0o077:
                raise CredentialError(
                    f"{self.family}: ssh_key {self.key} is readable by others (mode "
                    f"{stat.S_IMODE(info.st_mode):04o}); ssh refuses such keys",
                    hint=f"chmod 600 {self.key}",
                )

    # -- running commands -----------------------------------------------------------------

    def run(
        self,
        remote: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``remote`` (an argv) on the login node; its own exit status and output come
        back as from a local tool. ssh's failures raise (see the module docstring)."""
        self._prepare()
        argv = list(remote)
        if env:
            argv = ["env", *(f"{k}={v}" for k, v in env.items()), *argv]
        tool = PurePosixPath(remote[0]).name
        try:
            proc = run_tool(self.command(argv), self.errors, timeout=timeout, stdin=stdin, stdout=stdout)
        except DeliveryUncertain:
            raise DeliveryUncertain(
                f"`{tool}` on {self.destination} did not answer within {timeout:.0f} s; "
                "the request may have arrived",
                backend=self.family,
                hint="nothing is sent again blindly: `cops-grid sync` asks the cluster what happened",
            ) from None
        if proc.returncode == 255:
            raise self.failure(proc, tool)
        if proc.returncode in (126, 127) and _not_found(proc):
            raise ToolMissing(
                f"`{tool}` is not installed on the login node {self.destination} (or not on the "
                f"PATH of its non-interactive shell): {last_line(proc)}",
                backend=self.family,
                hint="set bin_dir to the directory of the Slurm commands there",
            )
        return proc

    def failure(self, proc: subprocess.CompletedProcess[str], tool: str) -> BackendError | CredentialError:
        """What ssh's exit status 255 means (see the module docstring)."""
        said = proc.stderr or ""
        where = f"ssh {self.destination}"
        known = str(self.known_hosts or "~/.ssh/known_hosts")
        name = self.destination.known_hosts_name
        if any(m in said for m in _HOSTKEY_CHANGED):
            return CredentialError(
                f"{self.family}: {where}: the login node's host key does not match the one in "
                f"{known}; refusing to connect (it may be an impostor, or its key was replaced)",
                hint=f"confirm the new key's fingerprint with the site, then replace the entry: "
                f"ssh-keygen -f {shlex.quote(known)} -R {shlex.quote(name)}; "
                "cops-grid never accepts or replaces host keys itself",
            )
        if any(m in said for m in _HOSTKEY):
            return CredentialError(
                f"{self.family}: {where}: the login node's host key is not in {known}; refusing "
                "to connect to an unverified host",
                hint=f"add its key after checking the fingerprint with the site (ssh-keyscan "
                f"{'-p ' + str(self.destination.port) + ' ' if self.destination.port else ''}"
                f"{self.destination.host}, or `ssh {self.destination}` once); "
                "cops-grid never accepts host keys itself",
            )
        if any(m in said for m in _KEY_REFUSED):
            offered = f"the key {self.key}" if self.key else "the agent's and the default keys"
            return CredentialError(
                f"{self.family}: {where}: the login node refused {offered} ({last_line(proc)})",
                hint="check ssh_key and that its public key is in ~/.ssh/authorized_keys on the "
                "login node; a key with a passphrase must be in ssh-agent (no prompts)",
            )
        text = _ssh_said(said)
        if _NEVER_CONNECTED.search(said):
            return BackendUnavailable(
                f"{where}: {text}; `{tool}` was not sent",
                backend=self.family,
                hint="check the login node's address and port, or try later; the jobs stay retryable",
            )
        return DeliveryUncertain(
            f"{where}: the connection dropped while `{tool}` ran ({text}); it may have run on the login node",
            backend=self.family,
            hint="nothing is sent again blindly: `cops-grid sync` asks the cluster what happened",
        )

    def connect(self, timeout: float) -> None:
        """Open (or reuse) the connection; every failure means nothing was sent."""
        try:
            proc = self.run(["true"], timeout=timeout)
        except BackendError as exc:
            if exc.delivery is Delivery.MAY_HAVE_ARRIVED:  # `true` may have run: nothing else did
                raise BackendUnavailable(exc.message, hint=exc.hint) from None
            raise
        if proc.returncode != 0:
            raise BackendUnavailable(
                f"ssh {self.destination}: `true` failed there ({last_line(proc)})",
                backend=self.family,
                hint="check the login shell of the account on the login node",
            )

    def close(self) -> None:
        """Stop the shared connection now (``ssh -O exit``); a later command opens a new one."""
        if self.control_path.exists():
            with contextlib.suppress(BackendError):
                run_tool(
                    [*self.ssh_argv(), "-O", "exit", "--", self.destination.host], self.errors, timeout=15
                )

    # -- files ----------------------------------------------------------------------------

    def put_tree(self, archive: IO[bytes], remote_dir: PurePosixPath, *, timeout: float) -> None:
        """Unpack the tar ``archive`` into ``remote_dir`` (created) on the login node."""
        for argv in (["mkdir", "-p", "--", str(remote_dir)], ["tar", "-x", "-f", "-", "-C", str(remote_dir)]):
            proc = self.run(argv, timeout=timeout, stdin=archive if argv[0] == "tar" else None)
            if proc.returncode != 0:
                raise BackendUnavailable(
                    f"staging to {self.destination}:{remote_dir} failed: {last_line(proc)}",
                    backend=self.family,
                    hint="check remote_jobs_dir (a directory the account can write, which the "
                    "compute nodes see); nothing was submitted",
                )

    def get_archive(
        self, remote_dir: PurePosixPath, names: Sequence[str], out: IO[bytes], *, timeout: float,
        exclude: Sequence[str] = (),
    ) -> None:  # fmt: skip
        """Write a tar of ``names`` (relative to ``remote_dir``; missing ones left out) to ``out``."""
        argv = ["tar", "-c", "-f", "-", "--ignore-failed-read", "-C", str(remote_dir)]
        argv += [f"--exclude={pattern}" for pattern in exclude]
        proc = self.run([*argv, "--", *names], timeout=timeout, stdout=out)
        if proc.returncode != 0:
            raise BackendUnavailable(
                f"reading {remote_dir} on {self.destination} failed: {last_line(proc)}",
                backend=self.family,
                hint="the login node needs GNU tar",
            )
        out.seek(0)

    def read_files(
        self, remote_dir: PurePosixPath, names: Sequence[str], *, timeout: float, limit: int = 64 << 20
    ) -> dict[str, bytes]:
        """The regular files among ``names`` (relative to ``remote_dir``), in one round trip."""
        if not names:
            return {}
        found: dict[str, bytes] = {}
        with tempfile.TemporaryFile() as buf:
            self.get_archive(remote_dir, names, buf, timeout=timeout)
            with tarfile.open(fileobj=buf, mode="r|") as tar:
                for member in tar:
                    if member.isfile() and member.size <= limit:
                        data = tar.extractfile(member)
                        if data is not None:
                            found[member.name] = data.read()
        return found

    def fetch_tree(
        self, remote_dir: PurePosixPath, name: str, dest: Path, *, timeout: float, exclude: Sequence[str] = ()
    ) -> Path:
        """Copy ``remote_dir/name`` into ``dest/name`` here; links leading out of it are refused."""
        inside = str(remote_dir / name) + "/"

        def safe(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
            if member.issym() and member.linkname.startswith(inside):  # absolute, yet inside: relative
                depth = member.name.count("/") - 1
                member = member.replace(linkname="../" * depth + member.linkname[len(inside) :])
            try:
                return tarfile.data_filter(member, path)
            except tarfile.FilterError as exc:
                log.warning("refusing %s from %s: %s", member.name, self.destination, exc)
                return None

        with tempfile.TemporaryFile() as buf:
            self.get_archive(remote_dir, [name], buf, timeout=timeout, exclude=exclude)
            with tarfile.open(fileobj=buf, mode="r:") as tar:
                tar.extractall(dest, filter=safe)  # noqa: S202 (data_filter, see safe())
        return dest / name


def _not_found(proc: subprocess.CompletedProcess[str]) -> bool:
    said = proc.stderr or ""
    return "not found" in said or "No such file or directory" in said or "Permission denied" in said


def _ssh_said(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip() and not line.startswith("@")]
    return lines[-1] if lines else "ssh exited with status 255"


def _private_dir(path: Path, family: str) -> None:
    """Create ``path`` 0700, or check that it is ours, a real directory, and private: others
    must not reach the shared connection through its socket."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise CredentialError(f"{family}: ssh control directory {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise CredentialError(
            f"{family}: ssh control directory {path} is not a directory of this user; its "
            "sockets would share the login node connection",
            hint="set ssh_control_dir to a private directory",
        )
    if info.st_mode & 0o077:
        path.chmod(0o700)
