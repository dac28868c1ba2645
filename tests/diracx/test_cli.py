"""End to end through the real CLI: `cops-grid submit ... --backend diracx --wait` against the
local DiracX, with the pilot-side helper (`cops-grid diracx run-jobs`) playing the site."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, Cli
from tests.services.diracx import DiracXServer

pytestmark = [pytest.mark.service, pytest.mark.slow]


@pytest.fixture
def diracx_cli(cli: Cli, cops_home: Path, diracx_server: DiracXServer, alice: Path, image_root: Path) -> Cli:
    (cops_home / "config.yaml").write_text(
        f"image_root: {image_root}\n"
        f"backends:\n  diracx:\n    url: {diracx_server.url}\n    credentials: {alice}\n"
    )
    return cli


def run_pilot(
    cli: Cli, server: DiracXServer, alice: Path, workdir: Path, name: str
) -> list[dict[str, object]]:
    """The site side: pick the job once it is waiting, run it, report (retries until it appears)."""
    argv = [
        "diracx", "run-jobs", "--url", server.url, "--credentials", str(alice),
        "--workdir", str(workdir), "--name-contains", name, "--json",
    ]  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        res = cli(*argv)
        if res.code != 2 or time.monotonic() > deadline:  # 2: no waiting job yet
            assert res.code == 0, res.stderr
            data: list[dict[str, object]] = json.loads(res.stdout)
            return data
        time.sleep(0.5)


def test_submit_wait_get_through_the_cli(
    diracx_cli: Cli,
    diracx_server: DiracXServer,
    alice: Path,
    tmp_path: Path,
    pilot_env: dict[str, str],
) -> None:
    submit = subprocess.Popen(
        diracx_cli.argv("submit", str(EXAMPLES / "hello.yaml"), "--backend", "diracx", "--wait"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**pilot_env, "COPS_GRID_HOME": str(diracx_cli.home)},
    )  # fmt: skip
    try:
        ran = run_pilot(diracx_cli, diracx_server, alice, tmp_path / "site", "hello.")
        out, err = submit.communicate(timeout=120)
    finally:
        if submit.poll() is None:
            submit.kill()
    assert [(r["status"], r["exit_code"]) for r in ran] == [("Done", 0)]
    assert submit.returncode == 0, err
    assert "Hello from Linux in a container, job hello" in out
    (job,) = json.loads(diracx_cli("list", "--json").stdout)
    assert (job["state"], job["backend"]) == ("completed", "diracx")
    got = diracx_cli("get", job["id"], "-o", str(tmp_path / "got"), "--json")
    assert got.code == 0, got.stderr
    names = sorted(Path(p).name for p in json.loads(got.stdout))
    assert names == ["cops-report.json", "result.txt", "std.err", "std.out"]
    assert (tmp_path / "got" / "result.txt").read_text() == "done\n"


def test_dry_run_prints_the_jdl(diracx_cli: Cli) -> None:
    res = diracx_cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "diracx", "--dry-run")
    assert res.code == 0, res.stderr
    assert 'Executable = "cops_dirac_launch.py";' in res.stdout  # hello.yaml's `;` needs the launcher
    assert 'OutputSandbox = {"std.out", "std.err", "cops-report.json", "result.txt"};' in res.stdout
    assert diracx_cli("list", "--json").stdout.strip() in ("", "[]")


def test_expired_token_is_refused_with_a_hint(
    diracx_cli: Cli, cops_home: Path, alice: Path, tmp_path: Path
) -> None:
    from tests.diracx.conftest import expired_copy

    expired = expired_copy(alice, tmp_path / "expired.json")
    config = (cops_home / "config.yaml").read_text().replace(str(alice), str(expired))
    (cops_home / "config.yaml").write_text(config)
    res = diracx_cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "diracx")
    assert res.code == 77, res.stderr
    assert "expired" in res.stderr
    assert "Hint:" in res.stderr
    assert "Traceback" not in res.stderr
