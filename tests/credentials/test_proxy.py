"""VOMS proxies through the real client tools (voms-proxy-* and arcproxy) on real proxies.

The proxies are made by ``voms-proxy-fake`` from a test-CA certificate (no VOMS server can
run here); everything else is the real tools' output, parsed by ``credentials/proxy.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from computeops_grid.credentials.proxy import (
    Tool,
    arc_seconds,
    default_proxy_path,
    pick_tool,
    proxy_destroy,
    proxy_info,
    proxy_init,
    valid_seconds,
)
from computeops_grid.errors import CredentialError, ToolMissing, UsageError
from tests.services.voms import GridUser

TOOLS: list[Tool] = ["voms", "arcproxy"]


@pytest.mark.parametrize("tool", TOOLS)
def test_info_of_a_voms_proxy(tool: Tool, grid_user: GridUser, proxies: Path) -> None:
    fqans = ("/cops.test/Role=NULL/Capability=NULL", "/cops.test/analysis/Role=NULL/Capability=NULL")
    path = grid_user.proxy(proxies / "p.pem", fqans=fqans)
    info = proxy_info(path, tool=tool)
    assert info.path == path
    assert info.identity == "/DC=org/DC=nordugrid/DC=ARC/O=TestCA/CN=copsuser"
    assert info.subject.startswith(info.identity + "/CN=")
    assert 23 * 3600 < info.time_left <= 24 * 3600
    assert not info.expired
    assert (info.vo, info.vos) == ("cops.test", ("cops.test",))
    if tool == "voms":
        assert info.fqans == fqans
    else:  # arcproxy drops the NULL role and capability
        assert info.fqans == ("/cops.test", "/cops.test/analysis")
    assert info.bits == 2048
    assert info.to_dict()["vo"] == "cops.test"


@pytest.mark.parametrize("tool", TOOLS)
def test_info_of_an_expired_proxy(tool: Tool, grid_user: GridUser, proxies: Path) -> None:
    info = proxy_info(grid_user.proxy(proxies / "old.pem", expired=True), tool=tool)
    assert info.expired
    assert info.time_left == 0
    assert info.vo == "cops.test"
    assert info.acs[0].time_left == 0


@pytest.mark.parametrize("tool", TOOLS)
def test_init_info_destroy_a_plain_proxy(tool: Tool, grid_user: GridUser, proxies: Path) -> None:
    path = proxies / "sub" / "new.pem"
    made = proxy_init(valid="1:30", path=path, cert=grid_user.cert, key=grid_user.key, tool=tool)
    assert path.stat().st_mode & 0o777 == 0o600
    assert made.identity == "/DC=org/DC=nordugrid/DC=ARC/O=TestCA/CN=copsuser"
    assert 85 * 60 <= made.time_left <= 90 * 60
    assert made.acs == ()
    assert proxy_destroy(path, tool=tool) is True
    assert not path.exists()
    assert proxy_destroy(path, tool=tool) is False


@pytest.mark.parametrize("tool", TOOLS)
def test_init_for_a_vo_without_vomses_is_a_clear_error(
    tool: Tool, grid_user: GridUser, proxies: Path
) -> None:
    path = proxies / "vo.pem"
    with pytest.raises(CredentialError) as info:
        proxy_init(voms="cops.test", path=path, cert=grid_user.cert, key=grid_user.key, tool=tool)
    if tool == "voms":
        assert "VOMS Server for cops.test not known" in info.value.message
    else:  # arcproxy exits 0 without writing a proxy
        assert "arcproxy could not make a proxy" in info.value.message
    assert "vomses" in (info.value.hint or "")
    assert not path.exists()


def test_missing_and_garbage_proxies(proxies: Path) -> None:
    with pytest.raises(CredentialError, match=r"no proxy at .*/absent\.pem") as info:
        proxy_info(proxies / "absent.pem")
    assert "cops-grid proxy init --out" in (info.value.hint or "")
    garbage = proxies / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(CredentialError, match=r"garbage\.pem is not a usable proxy"):
        proxy_info(garbage, tool="voms")


def test_x509_user_proxy_is_the_default(monkeypatch: pytest.MonkeyPatch, proxies: Path) -> None:
    monkeypatch.setenv("X509_USER_PROXY", str(proxies / "env.pem"))
    assert default_proxy_path() == proxies / "env.pem"
    monkeypatch.delenv("X509_USER_PROXY")
    assert default_proxy_path() == Path(f"/tmp/x509up_u{os.getuid()}")


def test_no_tools_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no proxy tool on it
    with pytest.raises(ToolMissing, match="voms-proxy-info or arcproxy is not installed") as info:
        pick_tool()
    assert "voms-clients" in (info.value.hint or "")
    assert info.value.exit_code == 69  # a tool to install, not a credential to renew (77)


@pytest.mark.parametrize(
    ("text", "seconds"), [("12:00", 43200), ("1:30", 5400), ("0:05", 300), ("168:00", 604800)]
)
def test_valid_durations(text: str, seconds: int) -> None:
    assert valid_seconds(text) == seconds


@pytest.mark.parametrize("text", ["99", "1:60", "0:00", "-1:00", "1h"])
def test_bad_valid_durations(text: str) -> None:
    with pytest.raises(UsageError, match="is not a duration HH:MM"):
        valid_seconds(text)


def test_arcproxy_durations() -> None:
    assert arc_seconds("1 day 2 hours 3 minutes 4 seconds") == 93784
    assert arc_seconds("59 minutes 1 second") == 3541
    assert arc_seconds("Proxy expired") == 0
