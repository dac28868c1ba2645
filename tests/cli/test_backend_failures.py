"""Backend failures seen through the real CLI, with a third-party backend plugin.

``spool`` (tests/plugins, installed by scripts/setup.sh) is registered by entry point
exactly like a real plugin; its settings reproduce what CEs do: refuse connections,
reject a job, drop the connection right after accepting one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from computeops_grid.backends.registry import known_backends
from tests.conftest import EXAMPLES, Cli

pytestmark = pytest.mark.skipif("spool" not in known_backends(), reason="pip install -e tests/plugins")


def configure(cli: Cli, tmp_path: Path, **flags: bool) -> None:
    lines = [f"    {k}: {str(v).lower()}" for k, v in flags.items()]
    text = (cli.home / "config.yaml").read_text()
    (cli.home / "config.yaml").write_text(
        text + f"  spool:\n    spool: {tmp_path / 'spool'}\n" + "\n".join(lines) + "\n"
    )


def test_third_party_backend_is_registered_by_entry_point(cli: Cli, tmp_path: Path) -> None:
    configure(cli, tmp_path)
    rows = {r["name"]: r for r in cli("backends", "--json").json()}  # type: ignore[union-attr]
    assert rows["spool"]["reachable"] is True


def test_unreachable_backend_keeps_the_job_retryable(cli: Cli, tmp_path: Path) -> None:
    configure(cli, tmp_path, down=True)
    result = cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "spool")
    assert result.code == 75
    assert "connection refused" in result.stderr and "resubmit" in result.stderr
    row = cli("list", "--json").json()[0]  # type: ignore[index]
    assert row["state"] == "new" and "connection refused" in row["message"]
    configure(cli, tmp_path)  # the CE is back (later keys win in YAML mappings)
    again = cli("resubmit", row["id"])
    assert again.code == 0, again.stderr
    rows = cli("list", "--json").json()
    assert isinstance(rows, list) and len(rows) == 1  # retried in place, not copied
    assert rows[0]["state"] == "queued" and rows[0]["native_id"] == f"spool-{row['id']}"


def test_rejected_job_is_failed_with_the_backend_message(cli: Cli, tmp_path: Path) -> None:
    configure(cli, tmp_path, refuse=True)
    result = cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "spool")
    assert result.code == 74
    assert "Queue 'nosuch' unknown" in result.stderr
    assert cli("list", "--json").json()[0]["state"] == "failed"  # type: ignore[index]


def test_connection_dropped_after_accept_is_found_by_sync_not_resubmitted(cli: Cli, tmp_path: Path) -> None:
    configure(cli, tmp_path, drop_after_accept=True)
    result = cli("submit", str(EXAMPLES / "parametric.yaml"), "--backend", "spool")
    assert result.code == 76
    assert "may have reached the backend" in result.stderr and "cops-grid sync" in result.stderr
    rows = cli("list", "--json").json()
    assert isinstance(rows, list) and {r["state"] for r in rows} == {"submitting"}
    configure(cli, tmp_path)
    synced = cli("sync", "--json")
    assert synced.code == 0, synced.stderr
    assert synced.json() == {
        "found": 10,
        "reset": 0,
        "still_unknown": 0,
        "submitted": 0,
        "failed": 0,
        "retryable": 0,
    }
    rows = cli("list", "--json").json()
    assert isinstance(rows, list) and len(rows) == 10 and {r["state"] for r in rows} == {"queued"}
    assert len(list((tmp_path / "spool").iterdir())) == 10  # each job exactly once on the backend
