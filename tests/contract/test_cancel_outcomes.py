"""What ``cops-grid cancel`` records and says for each answer a backend can give.

The ``spool`` test plugin (tests/plugins) plays the backend: its spool file is the job as
the backend knows it, and ``cancel_answer`` picks its answer to a cancel. Through the real
CLI: a state is recorded only when the backend reports it; otherwise the job keeps its
state and the exit status says why (0, 9, 74, 75, 76).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from computeops_grid.backends.registry import known_backends
from computeops_grid.logic.follow import UNCONFIRMED
from tests.conftest import EXAMPLES, Cli

pytestmark = pytest.mark.skipif("spool" not in known_backends(), reason="pip install -e tests/plugins")


def spool_job(cli: Cli, tmp_path: Path, **settings: object) -> str:
    """One job submitted to the spool backend (queued); then the backend behaves as ``settings``."""
    config = cli.home / "config.yaml"
    base = config.read_text()
    config.write_text(base + f"  spool:\n    spool: {tmp_path / 'spool'}\n")
    result = cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "spool")
    assert result.code == 0, result.stderr
    lines = "".join(f"    {k}: {v}\n" for k, v in settings.items())
    config.write_text(base + f"  spool:\n    spool: {tmp_path / 'spool'}\n{lines}")
    return result.stdout.split()[0]


def on_backend(tmp_path: Path, job_id: str) -> str:
    return str(json.loads((tmp_path / "spool" / f"{job_id}.json").read_text())["state"])


def stored(cli: Cli, job_id: str) -> dict[str, object]:
    rows = cli("list", "--json").json()
    assert isinstance(rows, list)
    (row,) = [r for r in rows if r["id"] == job_id]
    return dict(row)


def test_a_stopped_job_is_recorded_cancelled(cli: Cli, tmp_path: Path) -> None:
    job_id = spool_job(cli, tmp_path)
    result = cli("cancel", job_id)
    assert (result.code, result.stdout) == (0, f"{job_id} cancelled\n"), result.stderr
    assert on_backend(tmp_path, job_id) == "cancelled"
    assert stored(cli, job_id)["state"] == "cancelled"


def test_a_job_that_ended_keeps_its_state_and_is_not_sent_a_cancel(cli: Cli, tmp_path: Path) -> None:
    job_id = spool_job(cli, tmp_path, cancel_answer="refuse")  # a cancel sent would be refused
    (tmp_path / "spool" / f"{job_id}.json").write_text(json.dumps({"id": job_id, "state": "completed"}))
    result = cli("cancel", job_id)
    assert result.code == 0, result.stderr
    assert result.stdout == f"{job_id} completed: already finished; nothing to cancel\n"
    assert stored(cli, job_id)["state"] == "completed"
    assert on_backend(tmp_path, job_id) == "completed"


@pytest.mark.parametrize(
    ("settings", "code", "said"),
    [
        ({"down": "true"}, 75, "connection refused"),
        ({"cancel_answer": "dropped"}, 76, "connection reset by peer after sending the cancel"),
    ],
    ids=["not-sent", "may-have-arrived"],
)
def test_an_unreached_backend_leaves_the_state_unchanged(
    cli: Cli, tmp_path: Path, settings: dict[str, str], code: int, said: str
) -> None:
    job_id = spool_job(cli, tmp_path, **settings)
    before = stored(cli, job_id)
    result = cli("cancel", job_id)
    assert result.code == code, result.stderr
    assert said in result.stderr
    assert "not cancelled: backend not reached, state unchanged" in result.stderr
    assert f"{job_id} queued: not cancelled, state unchanged: spool: {said}" in result.stdout
    assert "Traceback" not in result.stderr
    after = stored(cli, job_id)
    assert (after["state"], after["message"], after["updated"]) == (
        before["state"], before["message"], before["updated"],
    )  # fmt: skip
    assert on_backend(tmp_path, job_id) == "queued"


def test_a_refused_cancel_says_why_and_keeps_the_state(cli: Cli, tmp_path: Path) -> None:
    job_id = spool_job(cli, tmp_path, cancel_answer="refuse")
    result = cli("cancel", job_id)
    assert result.code == 74, result.stderr
    assert result.stdout == f"{job_id} queued: not cancelled: Queue 'keep' forbids kills\n"
    row = stored(cli, job_id)
    assert (row["state"], row["message"]) == ("queued", "not cancelled: Queue 'keep' forbids kills")


def test_an_unconfirmed_cancel_keeps_the_state_and_exits_9(cli: Cli, tmp_path: Path) -> None:
    job_id = spool_job(cli, tmp_path, cancel_answer="later")
    started = time.monotonic()
    result = cli("cancel", job_id, "--confirm-wait", "1")
    took = time.monotonic() - started
    assert result.code == 9, result.stderr
    assert result.stdout == f"{job_id} queued: {UNCONFIRMED}\n"
    assert "cops-grid status" in result.stderr
    assert 1 <= took < 15  # it waited, boundedly
    row = stored(cli, job_id)
    assert (row["state"], row["message"]) == ("queued", UNCONFIRMED)
    (tmp_path / "spool" / f"{job_id}.json").write_text(json.dumps({"id": job_id, "state": "cancelled"}))
    assert cli("status", job_id).code == 0  # the backend confirms later: status records it
    assert stored(cli, job_id)["state"] == "cancelled"


def test_cancel_help_documents_its_exit_status(cli: Cli) -> None:
    text = " ".join(cli("cancel", "--help").stdout.split())
    assert "--confirm-wait" in text
    for said in ("0 every job is cancelled or had already ended", "9 the backend took the request", "74"):
        assert said in text
