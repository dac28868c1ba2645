"""The CLI's documented exit codes and messages, through the real entry point."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import EXAMPLES, ROOT, Cli


def test_help_documents_exit_codes_and_commands(cli: Cli) -> None:
    result = cli("--help")
    assert result.code == 0
    for word in ("submit", "status", "list", "get", "logs", "cancel", "resubmit", "sync", "backends"):
        assert word in result.stdout
    assert "Exit codes:" in result.stdout
    assert "75 backend" in result.stdout


def test_invalid_job_file_exits_3_with_file_line_field_and_no_traceback(cli: Cli) -> None:
    bad = ROOT / "tests" / "data" / "jobs" / "bad-memory.yaml"
    result = cli("submit", str(bad))
    assert result.code == 3
    assert f"Error: {bad}:6: resources.memory: expected a size like 2GiB" in result.stderr
    assert "Traceback" not in result.stderr
    assert cli("list", "--json").json() == []  # nothing stored


def test_unknown_job_id_exits_4(cli: Cli) -> None:
    result = cli("status", "ffffffffffff")
    assert result.code == 4
    assert "no job ffffffffffff" in result.stderr
    assert "cops-grid list" in result.stderr


def test_unknown_backend_exits_3_and_lists_known_ones(cli: Cli) -> None:
    result = cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "nosuch")
    assert result.code == 3
    assert "no backend named 'nosuch'; known:" in result.stderr
    assert "local" in result.stderr
    assert cli("list", "--json").json() == []


def test_bad_option_exits_2(cli: Cli) -> None:
    result = cli("list", "--state", "sideways")
    assert result.code == 2
    assert "Traceback" not in result.stderr


def test_bad_config_exits_3_naming_the_setting(cli: Cli) -> None:
    (cli.home / "config.yaml").write_text("backends:\n  local:\n    max_parallel: 0\n")
    result = cli("submit", str(EXAMPLES / "hello.yaml"))
    assert result.code == 3
    assert "backends.local.max_parallel" in result.stderr


def test_unreadable_store_exits_71(cli: Cli) -> None:
    (cli.home / "jobs.sqlite").write_bytes(b"garbage" * 1000)
    result = cli("list")
    assert result.code == 71
    assert "cannot open the job store" in result.stderr
    assert "Hint:" in result.stderr


def test_backends_lists_local_as_reachable(cli: Cli) -> None:
    result = cli("backends", "--json")
    assert result.code == 0
    rows = {r["name"]: r for r in result.json()}  # type: ignore[union-attr]
    assert rows["local"]["reachable"] is True
    assert "containers" in rows["local"]["capabilities"]


def test_debug_shows_traceback_only_when_asked(cli: Cli, tmp_path: Path) -> None:
    result = cli("--debug", "status", "ffffffffffff")
    assert result.code == 4
    assert "Traceback" in result.stderr


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.code == 0
    assert result.stdout.startswith("cops-grid ")


def test_cancel_of_a_new_job_needs_no_backend(cli: Cli) -> None:
    # a job kept as `new` (e.g. its CE was down) is cancelled in the store alone
    from computeops_grid.jobs.model import JobSpec
    from computeops_grid.jobs.record import JobRecord
    from computeops_grid.jobs.store import JobStore

    with JobStore(cli.home / "jobs.sqlite") as store:
        store.add(
            [JobRecord(id="abc123abc123", spec=JobSpec(name="x", image="i", command="c"), backend="local")]
        )
    result = cli("cancel", "abc1")
    assert result.code == 0
    assert "abc123abc123 cancelled" in result.stdout
