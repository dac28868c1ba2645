"""The delivery model: one runner for the command-line tools and one retry policy.

The tools here are real processes (a missing binary, a script that hangs, a script that
prints a family's error line); nothing is mocked.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from computeops_grid.backends.common.retry import may_retry, with_retries
from computeops_grid.backends.common.tools import ToolErrors, run_tool, tool_failure
from computeops_grid.errors import (
    BackendRejected,
    BackendUnavailable,
    CredentialError,
    Delivery,
    DeliveryUncertain,
    ExitCode,
    ToolMissing,
)

FAMILY = ToolErrors(
    family="demo",
    install_hint="apt-get install demo-client",
    unreachable=("Unable to contact controller",),
    uncertain=("Socket timed out",),
    credential=("proxy expired",),
)


def _tool(tmp_path: Path, body: str) -> str:
    path = tmp_path / "tool"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_missing_tool_is_not_sent_and_not_retried_soon(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing) as caught:
        run_tool([str(tmp_path / "nosuch-sbatch")], FAMILY, timeout=5)
    exc = caught.value
    assert exc.delivery is Delivery.NOT_SENT and exc.exit_code == ExitCode.TOOL_MISSING
    assert exc.hint == "apt-get install demo-client"
    assert not may_retry(exc, idempotent=True)


def test_a_tool_that_hangs_may_have_delivered(tmp_path: Path) -> None:
    with pytest.raises(DeliveryUncertain) as caught:
        run_tool([_tool(tmp_path, "sleep 30")], FAMILY, timeout=0.5)
    assert caught.value.delivery is Delivery.MAY_HAVE_ARRIVED
    assert caught.value.exit_code == ExitCode.MAY_HAVE_ARRIVED


@pytest.mark.parametrize(
    ("said", "kind", "delivery"),
    [
        ("error: Unable to contact controller (connect failure)", BackendUnavailable, Delivery.NOT_SENT),
        ("error: Socket timed out on send/recv operation", DeliveryUncertain, Delivery.MAY_HAVE_ARRIVED),
        ("error: Batch job submission failed: Invalid partition name", BackendRejected, Delivery.REJECTED),
    ],
)
def test_error_lines_map_to_one_delivery(
    tmp_path: Path, said: str, kind: type[Exception], delivery: Delivery
) -> None:
    proc = run_tool([_tool(tmp_path, f"echo 'noise' >&2; echo '{said}' >&2; exit 1")], FAMILY, timeout=5)
    error = tool_failure("tool", proc, FAMILY)
    assert type(error) is kind
    assert error.delivery is delivery
    assert said in error.message


def test_credential_lines_are_credential_errors(tmp_path: Path) -> None:
    proc = run_tool([_tool(tmp_path, "echo 'ERROR: proxy expired' >&2; exit 1")], FAMILY, timeout=5)
    assert isinstance(tool_failure("tool", proc, FAMILY), CredentialError)


def test_tools_get_no_stdin_and_the_extra_environment(tmp_path: Path) -> None:
    proc = run_tool(
        [_tool(tmp_path, 'read line; echo "read=$? conf=$SLURM_CONF"')],
        FAMILY,
        timeout=5,
        extra_env={"SLURM_CONF": "/x/slurm.conf"},
    )
    assert proc.stdout.strip() == "read=1 conf=/x/slurm.conf"  # stdin closed: no prompt can hang


def _counting(error: Exception, calls: list[int]) -> object:
    def call() -> None:
        calls.append(1)
        raise error

    return call


@pytest.mark.parametrize(
    ("error", "idempotent", "attempts"),
    [
        (BackendUnavailable("down"), False, 3),  # not sent: always retried
        (DeliveryUncertain("lost reply"), False, 1),  # a submit is never repeated
        (DeliveryUncertain("lost reply"), True, 3),  # a status query may be
        (BackendRejected("no such queue"), True, 1),  # a refusal never is
        (ToolMissing("no sbatch"), True, 1),  # not installed: retrying now cannot help
    ],
)
def test_the_one_retry_policy(error: Exception, idempotent: bool, attempts: int) -> None:
    calls: list[int] = []
    with pytest.raises(type(error)):
        with_retries(_counting(error, calls), idempotent=idempotent, delay=0.001)  # type: ignore[arg-type]
    assert len(calls) == attempts


def test_every_tool_call_goes_through_the_one_runner() -> None:
    """No backend or credential module calls subprocess.run itself (the local backend's
    job launcher and runner start the job, they call no service)."""
    root = Path(__file__).resolve().parents[2] / "computeops_grid"
    offenders = [
        p.relative_to(root).as_posix()
        for sub in ("backends", "credentials")
        for p in (root / sub).rglob("*.py")
        if "subprocess.run(" in p.read_text() and p.name != "tools.py" and "local" not in p.parts
    ]
    assert offenders == []


def test_no_substring_guessing_of_delivery_outside_the_tables() -> None:
    """'may have arrived' is said by the error's delivery, never by matching its message."""
    root = Path(__file__).resolve().parents[2] / "computeops_grid"
    texts = {p: p.read_text() for p in root.rglob("*.py") if "worker" not in p.parts}
    assert not [p for p, t in texts.items() if 'getattr(exc, "uncertain"' in t or "in exc.message" in t]
