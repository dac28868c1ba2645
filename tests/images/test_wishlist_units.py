"""Wishlist entries (schemes, tag wildcards), auth.json lookup, backoff: no registry needed."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from computeops_grid.images import credentials
from computeops_grid.images.errors import ImageError
from computeops_grid.images.operations import publish_sources
from computeops_grid.images.reference import parse_ref
from computeops_grid.images.registry import Backoff
from computeops_grid.images.wishlist import load_wishlist, parse_wish


def test_wish_schemes_and_wildcards(tmp_path: Path) -> None:
    plain = parse_wish("http://127.0.0.1:5000/bars/good:v1.*")
    assert (plain.scheme, plain.ref.registry, plain.ref.repository, plain.pattern) == (
        "http", "127.0.0.1:5000", "bars/good", "v1.*"
    )  # fmt: skip
    assert (
        plain.matches("v1.2")
        and plain.matches("v1.")
        and not plain.matches("v1x2")
        and not plain.matches("v2.1")
    )
    assert parse_wish("127.0.0.1:5000/bars/good:*").matches("anything")
    assert parse_wish("127.0.0.1:5000/bars/good:*").scheme == "https"
    exact = parse_wish("https://registry.hub.docker.com/library/centos:centos7")
    assert not exact.wildcard and exact.ref.public_path == "registry.hub.docker.com/library/centos:centos7"
    assert parse_wish("reg.example.org:5000/x/y").ref.tag == "latest"  # the port is not a tag
    assert plain.covers(parse_ref("127.0.0.1:5000/bars/good:v1.9"))
    assert not plain.covers(parse_ref("127.0.0.1:5000/bars/other:v1.9"))
    wishlist = tmp_path / "w.yaml"
    wishlist.write_text(
        "version: 1\ninput:\n  - http://h:1/a/b:*\n  - 'h:1/a/b:*@sha256:" + "0" * 64 + "'\n  - 'bad name!'\n"
    )
    loaded = load_wishlist(wishlist)
    assert [w.pattern for w in loaded.wishes] == ["*"]
    assert [entry for entry, _ in loaded.skipped] == [f"h:1/a/b:*@sha256:{'0' * 64}", "bad name!"]


def _auth(path: Path, entries: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = {key: {"auth": base64.b64encode(value.encode()).decode()} for key, value in entries.items()}
    path.write_text(json.dumps({"auths": encoded}))
    return path


def test_credentials_come_from_the_containers_auth_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    _auth(
        tmp_path / "home" / ".config" / "containers" / "auth.json",
        {"reg:5000": "cfg:pw1", "docker.io": "hub:pw2"},
    )
    found = credentials.lookup("reg:5000", "a/b")
    assert found is not None and (found.username, found.password) == ("cfg", "pw1")
    assert "pw1" not in repr(found) and "pw1" not in found.describe()
    hub = credentials.lookup("registry.hub.docker.com", "library/busybox")
    assert hub is not None and hub.username == "hub"
    # ${XDG_RUNTIME_DIR}/containers/auth.json comes first; the most specific key wins
    _auth(tmp_path / "run" / "containers" / "auth.json", {"reg:5000": "run:pw3", "reg:5000/a/b": "repo:pw4"})
    assert getattr(credentials.lookup("reg:5000", "a/b"), "username", "") == "repo"
    assert getattr(credentials.lookup("reg:5000", "a/c"), "username", "") == "run"
    # $REGISTRY_AUTH_FILE alone when set
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(_auth(tmp_path / "explicit.json", {"other:1": "x:y"})))
    assert credentials.lookup("reg:5000", "a/b") is None
    (tmp_path / "explicit.json").write_text(json.dumps({"auths": {"reg:5000": {"auth": "bm90LWJhc2U2NA=="}}}))
    with pytest.raises(ImageError, match="not base64 of USER:PASSWORD"):
        credentials.lookup("reg:5000", "a/b")


def test_backoff_doubles_and_honours_retry_after() -> None:
    backoff = Backoff(attempts=5, first=0.5, cap=3.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
    assert backoff.delay(1, "2") == 2.0
    assert backoff.delay(1, "3600") == 3.0


def test_publish_points_a_wishlist_to_sync(tmp_path: Path) -> None:
    wishlist = tmp_path / "recipe.yaml"
    wishlist.write_text("version: 1\ninput: []\n")
    with pytest.raises(ImageError, match="is a wishlist") as caught:
        publish_sources([str(wishlist)], tmp_path / "repo")
    assert "cops-grid image sync" in (caught.value.hint or "")
