"""Preflight on real proxies: each refusal is one message naming the problem and its fix."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from computeops_grid.credentials.preflight import check_proxy, health_problems
from computeops_grid.errors import CredentialError
from tests.services.voms import GridUser


def refused(path: Path, **kwargs: object) -> CredentialError:
    with pytest.raises(CredentialError) as info:
        check_proxy(path, **kwargs)  # type: ignore[arg-type]
    return info.value


def test_good_proxy_passes_without_warnings(grid_user: GridUser, proxies: Path) -> None:
    path = grid_user.proxy(proxies / "good.pem")
    assert check_proxy(path, vo="cops.test", walltime=3600) == []
    assert health_problems(path, vo="cops.test") == ("", [])


def test_missing_proxy(proxies: Path) -> None:
    exc = refused(proxies / "none.pem", vo="cops.test")
    assert exc.message == f"no proxy at {proxies / 'none.pem'}"
    assert exc.hint == f"create one with `cops-grid proxy init --voms cops.test --out {proxies / 'none.pem'}`"


def test_world_readable_proxy(grid_user: GridUser, proxies: Path) -> None:
    path = grid_user.proxy(proxies / "open.pem")
    path.chmod(0o644)
    exc = refused(path, vo="cops.test")
    assert exc.message == (
        f"the proxy {path} can be read by others (mode 0644); it must be readable only by you"
    )
    assert (exc.hint or "").startswith(f"`chmod 600 {path}`")


def test_proxy_of_another_user(grid_user: GridUser, proxies: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("giving a file to another user needs root")
    path = grid_user.proxy(proxies / "theirs.pem")
    os.chown(path, 65534, 65534)
    exc = refused(path)
    assert f"belongs to uid 65534, not to you (uid {os.getuid()})" in exc.message


def test_expired_proxy(grid_user: GridUser, proxies: Path) -> None:
    path = grid_user.proxy(proxies / "old.pem", expired=True)
    exc = refused(path, vo="cops.test")
    assert exc.message == f"the proxy {path} has expired"
    assert "cops-grid proxy init --voms cops.test" in (exc.hint or "")


def test_wrong_vo(grid_user: GridUser, proxies: Path) -> None:
    path = grid_user.proxy(proxies / "other.pem", vo="other.vo")
    exc = refused(path, vo="cops.test")
    assert exc.message == f"the proxy {path} carries other.vo, but this backend needs VO cops.test"
    assert "--voms cops.test" in (exc.hint or "")


def test_plain_proxy_has_no_vo(grid_user: GridUser, proxies: Path) -> None:
    path = grid_user.proxy(proxies / "plain.pem", vo=None)
    exc = refused(path, vo="cops.test")
    assert "carries no VO at all (a plain proxy), but this backend needs VO cops.test" in exc.message
    assert check_proxy(path, walltime=600) == []  # no VO configured: a plain proxy will do


def test_proxy_shorter_than_the_walltime_warns(grid_user: GridUser, proxies: Path) -> None:
    path = grid_user.proxy(proxies / "short.pem", hours=2)
    (warning,) = check_proxy(path, vo="cops.test", walltime=3 * 3600)
    assert re.search(f"the proxy {re.escape(str(path))} expires in (2:00|1:59) h", warning)
    assert "but the job may run 3:00 h (+0:10 margin)" in warning
    assert check_proxy(path, vo="cops.test", walltime=3600) == []


def test_health_reports_problems_and_soon_expiry(grid_user: GridUser, proxies: Path) -> None:
    error, warnings = health_problems(grid_user.proxy(proxies / "x.pem", vo="other.vo"), vo="cops.test")
    assert "needs VO cops.test" in error
    assert warnings == []
    short = grid_user.proxy(proxies / "short.pem", hours=1)
    error, warnings = health_problems(short, vo="cops.test", soon=2 * 3600)
    assert error == ""
    assert re.match(f"the proxy {re.escape(str(short))} expires in (1:00|0:59) h: renew", warnings[0])
