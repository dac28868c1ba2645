"""End to end through the real CLI on the session's real A-REX (REST, Slurm LRMS): submit
--wait, get, cancel, and preflight refusals that leave the store and the CE untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from computeops_grid.backends.arc.rest import ArcRest
from tests.conftest import EXAMPLES, Cli, configure_backend
from tests.e2e.helpers import rows, sleep_job, submitted_id, wait_gone, wait_present, wait_state
from tests.services.arc import CERTS, ArcCE
from tests.services.voms import GridUser

pytestmark = [pytest.mark.service, pytest.mark.slow]


@pytest.fixture
def arc_cli(cli: Cli, cops_home: Path, arc_settings: dict[str, Any]) -> Cli:
    configure_backend(cops_home, "arc", arc_settings)
    return cli


def test_submit_wait_prints_the_payload_output_and_get_fetches_outputs(arc_cli: Cli, tmp_path: Path) -> None:
    res = arc_cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "arc", "--wait", timeout=300)
    assert res.code == 0, res.stderr
    assert "Hello from Linux in a container, job hello" in res.stdout
    (job,) = rows(arc_cli("list", "--json"))
    assert (job["state"], job["backend"], job["exit_code"]) == ("completed", "arc", 0)
    assert job["native_id"].startswith("https://")
    got = arc_cli("get", job["id"], "-o", str(tmp_path / "got"), "--json")
    assert got.code == 0, got.stderr
    files = got.json()
    assert isinstance(files, list)
    assert str(tmp_path / "got" / "result.txt") in files
    assert (tmp_path / "got" / "result.txt").read_text() == "done\n"


def test_cancel_stops_a_running_job_and_leaves_no_process(arc_cli: Cli, tmp_path: Path) -> None:
    job_id = submitted_id(arc_cli, str(sleep_job(tmp_path, 317)), "--backend", "arc")
    wait_state(arc_cli, job_id, "running", timeout=180)
    assert wait_present(["sleep", "317"]), "the payload never started"
    res = arc_cli("cancel", job_id)
    assert res.code == 0, res.stderr
    assert res.stdout.split() == [job_id, "cancelled"]
    assert wait_gone(["sleep", "317"], timeout=90) == []  # A-REX -> scancel within ~10 s


BAD_PROXIES = {
    "missing": ("no proxy at {path}", "create one with `cops-grid proxy init --voms cops.test --out {path}`"),
    "expired": ("the proxy {path} has expired", "renew it with `cops-grid proxy init --voms cops.test"),
    "wrong-vo": (
        "the proxy {path} carries other.vo, but this backend needs VO cops.test",
        "make a proxy of VO cops.test with `cops-grid proxy init --voms cops.test",
    ),
    "world-readable": ("the proxy {path} can be read by others (mode 0644)", "`chmod 600 {path}`"),
}


def bad_proxy(ce: ArcCE, kind: str, directory: Path) -> Path:
    user = GridUser(ce.user_cert, ce.user_key)
    if kind == "missing":
        return directory / "absent.pem"
    if kind == "expired":
        return user.proxy(directory / "expired.pem", expired=True)
    if kind == "wrong-vo":
        return user.proxy(directory / "other.pem", vo="other.vo")
    path = user.proxy(directory / "open.pem")
    path.chmod(0o644)
    return path


@pytest.fixture
def ce_jobs(arc_ce: ArcCE, good_proxy: Path) -> ArcRest:
    """The CE as the test user sees it (to check that nothing reached it)."""
    return ArcRest(arc_ce.url, good_proxy, str(CERTS))


@pytest.mark.parametrize("kind", sorted(BAD_PROXIES))
def test_bad_proxy_is_refused_before_anything_is_stored_or_sent(  # noqa: PLR0917 - fixtures
    kind: str,
    arc_cli: Cli,
    cops_home: Path,
    arc_ce: ArcCE,
    arc_settings: dict[str, Any],
    ce_jobs: ArcRest,
    tmp_path: Path,
) -> None:
    path = bad_proxy(arc_ce, kind, tmp_path)
    configure_backend(cops_home, "arc", {**arc_settings, "proxy": str(path)})
    before = set(ce_jobs.list_jobs())
    res = arc_cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "arc")
    message, hint = (s.format(path=path) for s in BAD_PROXIES[kind])
    assert res.code == 77, res.stderr
    assert f"Error: {message}" in res.stderr
    assert hint in res.stderr.split("Hint: ", 1)[1]
    assert "Traceback" not in res.stderr
    assert arc_cli("list", "--json").json() == []  # nothing stored
    assert set(ce_jobs.list_jobs()) == before  # nothing sent


def test_backends_shows_the_credential_problem(
    arc_cli: Cli, cops_home: Path, arc_ce: ArcCE, arc_settings: dict[str, Any], tmp_path: Path
) -> None:
    res = arc_cli("backends", "--json")
    (row,) = [r for r in rows(res) if r["name"] == "arc"]
    assert row["reachable"] is True, row
    assert row["detail"] == f"{arc_ce.url} REST 1.0"
    expired = bad_proxy(arc_ce, "expired", tmp_path)
    configure_backend(cops_home, "arc", {**arc_settings, "proxy": str(expired)})
    res = arc_cli("backends", "--json")
    (row,) = [r for r in rows(res) if r["name"] == "arc"]
    assert row["reachable"] is False
    assert row["detail"].startswith(f"credential: the proxy {expired} has expired; renew it with")
