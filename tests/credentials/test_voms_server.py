"""``proxy init --voms`` against a real VOMS server (Debian's voms + MariaDB on 127.0.0.1).

The server (``voms_server``, tests/credentials/conftest.py) serves VO ``testvo`` with the
group ``/testvo/analysis`` and the role ``prod``; the session's test-CA user is a member of
both, a second test-CA user (``stranger``) is unknown to it. Recipe and quirks:
docs/notes/voms-server.md.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from computeops_grid import worker
from computeops_grid.backends.arc.backend import ArcBackend, ArcSettings
from computeops_grid.backends.base import BackendContext
from computeops_grid.credentials.proxy import ProxyInfo, Tool, proxy_info, proxy_init
from computeops_grid.errors import CredentialError
from tests.conftest import Cli
from tests.services.grid_jobs import record
from tests.services.voms import HOSTCERT, GridUser, VomsServer, make_user, openssl_dn

pytestmark = [pytest.mark.service]

TOOLS: list[Tool] = ["voms", "arcproxy"]
IDENTITY = "/DC=org/DC=nordugrid/DC=ARC/O=TestCA/CN=copsuser"
STRANGER = "/DC=org/DC=nordugrid/DC=ARC/O=TestCA/CN=stranger"
# voms-proxy-info shows the FQANs as issued; arcproxy drops the NULL role and capability
GROUPS = {
    "voms": ("/testvo/Role=NULL/Capability=NULL", "/testvo/analysis/Role=NULL/Capability=NULL"),
    "arcproxy": ("/testvo", "/testvo/analysis"),
}
PROD = {"voms": "/testvo/Role=prod/Capability=NULL", "arcproxy": "/testvo/Role=prod"}


@pytest.fixture(scope="session")
def stranger(voms_server: VomsServer, tmp_path_factory: pytest.TempPathFactory) -> GridUser:
    """A certificate of the same test CA that the VO does not know."""
    return make_user(tmp_path_factory.mktemp("stranger"), "stranger")


def without_times(info: ProxyInfo) -> ProxyInfo:
    acs = tuple(dataclasses.replace(ac, time_left=0) for ac in info.acs)
    return dataclasses.replace(info, time_left=0, acs=acs)


def init(user: GridUser, path: Path, voms: str, tool: Tool, valid: str = "12:00") -> None:
    proxy_init(voms=voms, valid=valid, path=path, cert=user.cert, key=user.key, tool=tool)


@pytest.mark.parametrize("tool", TOOLS)
def test_init_gets_the_vo_and_its_group(
    tool: Tool, voms_env: VomsServer, grid_user: GridUser, proxies: Path
) -> None:
    path = proxies / "testvo.pem"
    made = proxy_init(
        voms="testvo", valid="2:00", path=path, cert=grid_user.cert, key=grid_user.key, tool=tool
    )
    assert path.stat().st_mode & 0o777 == 0o600
    assert (made.identity, made.vos) == (IDENTITY, ("testvo",))
    assert made.fqans == GROUPS[tool]
    (ac,) = made.acs
    assert ac.uri == f"127.0.0.1:{voms_env.port}"
    assert ac.issuer.replace("\\/", "/") == openssl_dn(HOSTCERT).replace("\\/", "/")
    assert 115 * 60 <= ac.time_left <= 120 * 60
    # read again a moment later: the same proxy, with the clock moved on by a second or so
    again = proxy_info(path, tool=tool)
    assert made.time_left - 5 <= again.time_left <= made.time_left
    assert without_times(again) == without_times(made)


@pytest.mark.parametrize("tool", TOOLS)
def test_init_with_a_role_puts_the_role_first(
    tool: Tool, voms_env: VomsServer, grid_user: GridUser, proxies: Path
) -> None:
    path = proxies / "prod.pem"
    init(grid_user, path, "testvo:/testvo/Role=prod", tool)
    assert proxy_info(path, tool=tool).fqans == (PROD[tool], *GROUPS[tool])


def test_cli_init_and_info_show_the_fqans(
    cli: Cli, voms_env: VomsServer, grid_user: GridUser, proxies: Path
) -> None:
    path = proxies / "cli.pem"
    res = cli(
        "proxy", "init", "--voms", "testvo:/testvo/Role=prod", "--out", str(path),
        "--cert", str(grid_user.cert), "--key", str(grid_user.key), "--json",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    data = res.json()
    assert isinstance(data, dict)
    assert (data["vo"], data["fqans"]) == ("testvo", [PROD["voms"], *GROUPS["voms"]])
    res = cli("proxy", "info", "--out", str(path))  # JSON: stdout is not a terminal
    assert res.code == 0, res.stderr
    data = res.json()
    assert isinstance(data, dict)
    assert (data["identity"], data["vos"]) == (IDENTITY, ["testvo"])
    assert data["fqans"] == [PROD["voms"], *GROUPS["voms"]]
    (ac,) = data["acs"]
    assert (ac["vo"], ac["uri"]) == ("testvo", f"127.0.0.1:{voms_env.port}")
    assert 11 * 3600 < ac["time_left"] <= 12 * 3600


def test_arc_preflight_accepts_testvo_and_refuses_another_vo(
    voms_env: VomsServer, grid_user: GridUser, proxies: Path, tmp_path: Path
) -> None:
    path = proxies / "arc.pem"
    init(grid_user, path, "testvo", "voms")
    ctx = BackendContext(home=tmp_path, jobs_dir=tmp_path / "jobs", image_root=tmp_path, pilot=worker.pilot())
    jobs = [record("true", resources={"walltime": 3600})]

    def arc(vo: str) -> ArcBackend:  # preflight is local: the CE is never contacted
        return ArcBackend(ArcSettings(ce="https://127.0.0.1:1/arex", vo=vo, proxy=str(path)), ctx)

    arc("testvo").preflight(jobs)
    with pytest.raises(CredentialError) as refused:
        arc("othervo").preflight(jobs)
    assert refused.value.message == f"the proxy {path} carries testvo, but this backend needs VO othervo"
    assert refused.value.hint == (
        f"make a proxy of VO othervo with `cops-grid proxy init --voms othervo --out {path}`"
    )


@pytest.mark.parametrize("tool", TOOLS)
def test_unknown_user_gets_the_servers_refusal(
    tool: Tool, voms_env: VomsServer, stranger: GridUser, proxies: Path
) -> None:
    path = proxies / "stranger.pem"
    with pytest.raises(CredentialError) as refused:
        init(stranger, path, "testvo", tool)
    assert refused.value.message == "the VOMS server of VO testvo refused: User unknown to this VO."
    assert refused.value.hint == (
        f"ask the managers of VO testvo to register {STRANGER} "
        "with what --voms asks for, or pass --cert and --key of a registered certificate"
    )
    assert not path.exists()


def test_unknown_user_through_the_cli_exits_77(
    cli: Cli, voms_env: VomsServer, stranger: GridUser, proxies: Path
) -> None:
    res = cli(
        "proxy", "init", "--voms", "testvo", "--out", str(proxies / "s.pem"),
        "--cert", str(stranger.cert), "--key", str(stranger.key),
    )  # fmt: skip
    assert res.code == 77
    assert "Error: the VOMS server of VO testvo refused: User unknown to this VO." in res.stderr
    assert f"Hint: ask the managers of VO testvo to register {STRANGER}" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("tool", TOOLS)
def test_a_role_the_member_lacks_is_refused(
    tool: Tool, voms_env: VomsServer, grid_user: GridUser, proxies: Path
) -> None:
    with pytest.raises(CredentialError) as refused:
        init(grid_user, proxies / "admin.pem", "testvo:/testvo/Role=admin", tool)
    assert refused.value.message.startswith("the VOMS server of VO testvo refused: ")
    assert "B/testvo:admin" in refused.value.message


@pytest.mark.parametrize("tool", TOOLS)
def test_a_server_that_is_down_is_named(
    tool: Tool, voms_env: VomsServer, grid_user: GridUser, proxies: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vomses = proxies / "vomses"
    down = voms_env.vomses.read_text().replace(f'"{voms_env.port}"', '"1"')
    vomses.write_text(down)
    vomses.chmod(0o644)
    monkeypatch.setenv("VOMS_USERCONF", str(vomses))
    monkeypatch.setenv("X509_VOMSES", str(vomses))
    with pytest.raises(CredentialError) as refused:
        init(grid_user, proxies / "down.pem", "testvo", tool)
    down_at = "the VOMS server of VO testvo at 127.0.0.1:1 could not be reached"
    assert refused.value.message.startswith(down_at)
    assert (refused.value.hint or "").startswith("is it up? check the VO's line in vomses")


def test_the_servers_secrets_stay_private(voms_server: VomsServer) -> None:
    """The database password is in one file (0640 as voms insists, in a 0700 directory),
    on no command line and in no log."""
    root = voms_server.root
    assert root.stat().st_mode & 0o777 == 0o700
    assert (root / "voms.pass").stat().st_mode & 0o777 == 0o640
    assert (root / "voms.conf").stat().st_mode & 0o777 == 0o600
    password = (root / "voms.pass").read_text().strip()
    assert len(password) == 32
    for proc in (voms_server.proc, voms_server.db.proc):
        assert proc is not None
        assert password not in Path(f"/proc/{proc.pid}/cmdline").read_text()
    for log in (root / "log").iterdir():
        assert password not in log.read_text(errors="replace"), log
    assert os.stat(voms_server.vomses).st_mode & 0o777 == 0o644
