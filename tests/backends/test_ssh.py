"""The login node's ssh command line and what ssh's failures mean (no server needed).

The same paths against a real sshd: tests/resources/test_ssh_slurm.py.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from computeops_grid.backends.common.ssh import Destination, LoginNode
from computeops_grid.backends.slurm.backend import SlurmSettings
from computeops_grid.errors import (
    BackendUnavailable,
    ConfigError,
    CredentialError,
    Delivery,
    DeliveryUncertain,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alice@login.example.org", Destination("login.example.org", "alice", None)),
        ("alice@login.example.org:2222", Destination("login.example.org", "alice", 2222)),
        ("login", Destination("login", None, None)),
        ("bob@[2001:db8::1]:22", Destination("2001:db8::1", "bob", 22)),
        ("first.last@10.0.0.1", Destination("10.0.0.1", "first.last", None)),
    ],
)
def test_destinations(text: str, expected: Destination) -> None:
    assert Destination.parse(text) == expected
    assert str(Destination.parse(str(expected))) == str(expected)


@pytest.mark.parametrize(
    "text",
    [
        "-oProxyCommand=x@host",
        "alice@-host",
        "alice@host:port",
        "alice@host:70000",
        "a b@host",
        "@",
        "x@h;id",
    ],
)
def test_bad_destinations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="user@"):
        Destination.parse(text)


REMOTE = {"ssh": "alice@login:2222", "remote_jobs_dir": "/scratch/alice/cops"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ssh": "alice@login"}, "remote_jobs_dir is required"),
        ({**REMOTE, "remote_jobs_dir": "cops/jobs"}, "remote_jobs_dir is required: an absolute path"),
        ({**REMOTE, "jobs_dir": "/x"}, "set remote_jobs_dir, not jobs_dir"),
        ({"remote_jobs_dir": "/x"}, "remote_jobs_dir needs ssh: user@host"),
        ({"known_hosts": "/x"}, "known_hosts needs ssh: user@host"),
        ({**REMOTE, "ssh_options": ["StrictHostKeyChecking=no"]}, "host keys are always checked"),
        ({**REMOTE, "ssh_options": ["UserKnownHostsFile=/dev/null"]}, "host keys are always checked"),
        ({**REMOTE, "ssh_options": ["ControlPath=/tmp/x"]}, "is set by cops-grid"),
        ({**REMOTE, "ssh_options": ["-oStrictHostKeyChecking=no"]}, "expected Name=value"),
        ({**REMOTE, "ssh": "alice@host;id"}, "not a host name"),
    ],
)
def test_settings_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SlurmSettings.model_validate(settings)


def node(tmp_path: Path, **kw: Any) -> LoginNode:
    return LoginNode(
        Destination.parse("alice@login:2222"), family="slurm", control_dir=str(tmp_path / "cm"), **kw
    )


def test_the_command_line_checks_host_keys_and_quotes_every_remote_argument(tmp_path: Path) -> None:
    login = node(tmp_path, options=["ProxyJump=gw.example.org", "StrictModes=no"])
    hostile = ["sbatch", "--parsable", "/scratch/a b/$(id)/`x`/it's;rm -rf ~", "", "*", "a\nb"]
    argv = login.command(hostile)
    assert argv[0] == "ssh"
    assert argv[-3:-1] == ["--", "login"]
    assert shlex.split(argv[-1]) == hostile  # one command line for the login shell, each argument quoted
    options = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert options.index("StrictHostKeyChecking=yes") < options.index("ProxyJump=gw.example.org")
    assert "BatchMode=yes" in options and "ControlMaster=auto" in options
    assert f"ControlPath={login.control_path}" in options
    assert argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-l") + 1] == "alice"


def test_one_connection_per_resource(tmp_path: Path) -> None:
    assert node(tmp_path).control_path == node(tmp_path).control_path
    assert node(tmp_path).control_path != node(tmp_path, key=str(tmp_path / "other")).control_path
    with pytest.raises(ConfigError, match="too long for a Unix socket"):
        LoginNode(Destination("h"), family="slurm", control_dir="/tmp/" + "x" * 80)


def _failed(stderr: str) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["ssh"], 255, "", stderr)


@pytest.mark.parametrize(
    ("stderr", "kind", "delivery", "said"),
    [
        (
            "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\n"
            "Host key for [login]:2222 has changed and you have requested strict checking.\n"
            "Host key verification failed.\n",
            CredentialError, None, "host key does not match",
        ),
        (
            "No ED25519 host key is known for [login]:2222 and you have requested strict checking.\n"
            "Host key verification failed.\n",
            CredentialError, None, "host key is not in ~/.ssh/known_hosts",
        ),
        ("alice@login: Permission denied (publickey).\n", CredentialError, None, "refused the agent's"),
        ("ssh: connect to host login port 2222: Connection refused\n", BackendUnavailable, Delivery.NOT_SENT,
         "Connection refused; `sbatch` was not sent"),
        ("ssh: Could not resolve hostname login: Name or service not known\n", BackendUnavailable,
         Delivery.NOT_SENT, "was not sent"),
        ("ssh: connect to host login port 2222: Connection timed out\n", BackendUnavailable,
         Delivery.NOT_SENT, "was not sent"),
        ("kex_exchange_identification: read: Connection reset by peer\n"
         "Connection reset by 10.0.0.1 port 2222\n", BackendUnavailable, Delivery.NOT_SENT, "was not sent"),
        ("", DeliveryUncertain, Delivery.MAY_HAVE_ARRIVED, "the connection dropped while `sbatch` ran"),
        ("Connection to login closed by remote host.\n", DeliveryUncertain, Delivery.MAY_HAVE_ARRIVED,
         "may have run on the login node"),
        ("client_loop: send disconnect: Connection reset by peer\n", DeliveryUncertain,
         Delivery.MAY_HAVE_ARRIVED, "dropped"),
        ("command-line: line 0: Bad configuration option: foo\n", BackendUnavailable, Delivery.NOT_SENT,
         "was not sent"),
        # a remote command's own words never count as ssh's: sbatch said it, then the line dropped
        ("sbatch: error: slurm_receive_msg: Connection refused\n", DeliveryUncertain,
         Delivery.MAY_HAVE_ARRIVED, "dropped"),
    ],
)  # fmt: skip
def test_what_ssh_exit_status_255_means(
    tmp_path: Path, stderr: str, kind: type[Exception], delivery: Delivery | None, said: str
) -> None:
    error = node(tmp_path).failure(_failed(stderr), "sbatch")
    assert type(error) is kind
    assert said in error.message
    if delivery is not None:
        assert getattr(error, "delivery", None) is delivery
    else:
        assert "never" in (error.hint or "") or "authorized_keys" in (error.hint or "")


def test_an_unsafe_key_is_refused_before_connecting(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("not really a key")
    key.chmod(0o644)
    with pytest.raises(CredentialError, match=r"readable by others \(mode 0644\)"):
        node(tmp_path, key=str(key)).run(["true"], timeout=5)
    with pytest.raises(CredentialError, match="No such file"):
        node(tmp_path, key=str(tmp_path / "missing")).run(["true"], timeout=5)
    assert (tmp_path / "cm").stat().st_mode & 0o777 == 0o700  # the socket directory is private
