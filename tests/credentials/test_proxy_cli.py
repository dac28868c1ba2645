"""``cops-grid proxy init|info|destroy`` through the real CLI on real proxies."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.services.voms import GridUser


def test_info_json_and_text(cli: Cli, grid_user: GridUser, proxies: Path) -> None:
    path = grid_user.proxy(proxies / "p.pem")
    res = cli("proxy", "info", "--out", str(path), "--json")
    assert res.code == 0, res.stderr
    data = res.json()
    assert isinstance(data, dict)
    assert (data["path"], data["vo"]) == (str(path), "cops.test")
    assert data["fqans"] == ["/cops.test/Role=NULL/Capability=NULL"]
    assert data["identity"] == "/DC=org/DC=nordugrid/DC=ARC/O=TestCA/CN=copsuser"
    assert 23 * 3600 < data["time_left"] <= 24 * 3600


def test_info_honours_x509_user_proxy(
    cli: Cli, grid_user: GridUser, proxies: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = grid_user.proxy(proxies / "env.pem", vo="other.vo")
    monkeypatch.setenv("X509_USER_PROXY", str(path))  # the CLI subprocess inherits it
    res = cli("proxy", "info", "--tool", "arcproxy", "--json")
    assert res.code == 0, res.stderr
    data = res.json()
    assert isinstance(data, dict)
    assert (data["path"], data["vos"], data["tool"]) == (str(path), ["other.vo"], "arcproxy")


def test_expired_proxy_exits_77(cli: Cli, grid_user: GridUser, proxies: Path) -> None:
    path = grid_user.proxy(proxies / "old.pem", expired=True)
    res = cli("proxy", "info", "--out", str(path))
    assert res.code == 77
    assert f"Error: the proxy {path} has expired" in res.stderr
    assert "Hint: `cops-grid proxy init`" in res.stderr
    assert "Traceback" not in res.stderr


def test_init_then_destroy(cli: Cli, grid_user: GridUser, proxies: Path) -> None:
    path = proxies / "new.pem"
    res = cli(
        "proxy", "init", "--valid", "2:00", "--out", str(path),
        "--cert", str(grid_user.cert), "--key", str(grid_user.key), "--json",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    data = res.json()
    assert isinstance(data, dict)
    assert data["vo"] is None
    assert 119 * 60 <= data["time_left"] <= 120 * 60
    assert path.stat().st_mode & 0o777 == 0o600
    res = cli("proxy", "destroy", "--out", str(path))
    assert (res.code, res.stderr.strip()) == (0, f"removed {path}")
    assert not path.exists()
    res = cli("proxy", "destroy", "--out", str(path))
    assert (res.code, res.stderr.strip()) == (0, f"no proxy at {path}: nothing to remove")


def test_init_errors_are_one_clear_message(cli: Cli, grid_user: GridUser, proxies: Path) -> None:
    res = cli("proxy", "init", "--valid", "12", "--out", str(proxies / "x.pem"))
    assert res.code == 2
    assert "Error: --valid '12' is not a duration HH:MM" in res.stderr
    res = cli(
        "proxy", "init", "--voms", "cops.test", "--out", str(proxies / "x.pem"),
        "--cert", str(grid_user.cert), "--key", str(grid_user.key), "--tool", "voms",
    )  # fmt: skip
    assert res.code == 77
    assert "Error: voms-proxy-init could not make a proxy: VOMS Server for cops.test not known!" in res.stderr
    assert "Hint: add the VO's line to ~/.voms/vomses" in res.stderr
    res = cli("proxy", "info", "--tool", "grid-proxy")
    assert res.code == 2
    assert "--tool 'grid-proxy' is not one of: voms, arcproxy" in res.stderr
