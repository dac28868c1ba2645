"""Bearer token discovery (WLCG Bearer Token Discovery order) and claim decoding."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from computeops_grid.credentials.token import decode_claims, discover_token, read_token_file
from computeops_grid.errors import CredentialError


def make_jwt(**claims: object) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def write(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def test_env_token_wins_over_files(tmp_path: Path) -> None:
    write(tmp_path / "bt_u1000", make_jwt(iss="file"))
    env = {"BEARER_TOKEN": make_jwt(iss="env"), "XDG_RUNTIME_DIR": str(tmp_path)}
    token = discover_token(env, uid=1000)
    assert token is not None
    assert token.iss == "env"
    assert token.path is None
    assert token.source == "BEARER_TOKEN"


def test_discovery_order_file_then_xdg(tmp_path: Path) -> None:
    named = write(tmp_path / "named", make_jwt(iss="named"))
    write(tmp_path / "bt_u1000", make_jwt(iss="xdg"))
    token = discover_token({"BEARER_TOKEN_FILE": str(named), "XDG_RUNTIME_DIR": str(tmp_path)}, uid=1000)
    assert token is not None
    assert token.iss == "named"
    assert token.path == named
    token = discover_token({"XDG_RUNTIME_DIR": str(tmp_path)}, uid=1000)
    assert token is not None
    assert token.iss == "xdg"
    assert token.source == "XDG_RUNTIME_DIR"


def test_tmp_fallback_and_none(tmp_path: Path) -> None:
    uid = 987_654  # nobody has a /tmp/bt_u file for this uid
    assert discover_token({"XDG_RUNTIME_DIR": str(tmp_path)}, uid=uid) is None
    path = write(Path(f"/tmp/bt_u{uid}"), make_jwt(iss="tmp"))
    try:
        token = discover_token({}, uid=uid)
        assert token is not None
        assert token.path == path
        assert token.iss == "tmp"
    finally:
        path.unlink()


def test_missing_bearer_token_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match=r"cannot read bearer token file .*nope"):
        discover_token({"BEARER_TOKEN_FILE": str(tmp_path / "nope")}, uid=1000)


def test_claims_expiry_scopes_groups() -> None:
    now = time.time()
    token = discover_token(
        {
            "BEARER_TOKEN": "  "
            + make_jwt(
                iss="https://iam.example.org/",
                sub="abc",
                exp=int(now) + 600,
                scope="compute.create compute.read storage.read:/",
                aud=["https://ce.example.org"],
                **{"wlcg.groups": ["/cops.test"]},
            )
        }
    )
    assert token is not None
    assert token.iss == "https://iam.example.org/"
    assert token.scope == ("compute.create", "compute.read", "storage.read:/")
    assert token.groups == ("/cops.test",)
    assert token.audience == ("https://ce.example.org",)
    assert not token.expired
    assert 590 < token.time_left(now) <= 600
    assert "ey" not in repr(token)  # the raw token never appears in logs/reprs


def test_expired_and_no_exp() -> None:
    assert discover_token({"BEARER_TOKEN": make_jwt(exp=1000)}).expired  # type: ignore[union-attr]
    token = discover_token({"BEARER_TOKEN": make_jwt(iss="x")})
    assert token is not None
    assert token.exp is None
    assert not token.expired


@pytest.mark.parametrize(
    ("text", "reason"),
    [("not-a-jwt", "not a JWT"), ("a.!!!!.c", "cannot be decoded"), ("a.WzFd.c", "not a JSON object")],
)
def test_bad_tokens(text: str, reason: str) -> None:
    with pytest.raises(CredentialError, match=reason):
        decode_claims(text)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="is empty"):
        read_token_file(write(tmp_path / "t", "  "))
