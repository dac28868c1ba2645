"""Delegations kept across submissions, against the session's real A-REX (no job is submitted)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from computeops_grid.backends.arc.delegation_cache import usable
from tests.arc.conftest import make_arc
from tests.services.arc import ArcCE


def _on_ce(arc_ce: ArcCE, proxy: Path, tmp_path: Path) -> list[str]:
    listed = make_arc(arc_ce.url, proxy, tmp_path).rest._request("GET", "delegations").json()
    items = listed.get("delegation", []) if isinstance(listed, dict) else []
    return [d["id"] for d in ([items] if isinstance(items, dict) else items)]


@pytest.mark.service
def test_a_later_submission_reuses_the_delegation_of_the_same_proxy(
    arc_ce: ArcCE, good_proxy: Path, tmp_path: Path
) -> None:
    first = make_arc(arc_ce.url, good_proxy, tmp_path).rest.delegate()
    again = make_arc(arc_ce.url, good_proxy, tmp_path).rest.delegate()  # another process, same home
    assert again == first
    assert first in _on_ce(arc_ce, good_proxy, tmp_path)
    cache = tmp_path / "arc" / "delegations.json"
    assert cache.stat().st_mode & 0o777 == 0o600

    renewed = arc_ce.proxy("renewed")  # the user made a new proxy: its own delegation
    other = make_arc(arc_ce.url, renewed, tmp_path).rest.delegate()
    assert other != first
    assert list(json.loads(cache.read_text()).values()) == [other], "one per CE: the current proxy's"

    key = next(iter(json.loads(cache.read_text())))
    cache.write_text(json.dumps({key: "0000deadbeef"}))  # the CE forgot it (cleaned, expired)
    fresh = make_arc(arc_ce.url, renewed, tmp_path).rest.delegate()
    assert fresh not in ("0000deadbeef", other)


def test_a_delegation_with_less_than_an_hour_left_is_not_reused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "delegated")])
    now = dt.datetime.now(dt.timezone.utc)

    def cert(left: dt.timedelta) -> bytes:
        built = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + left)
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        return built.public_bytes(serialization.Encoding.PEM)

    assert usable(cert(dt.timedelta(hours=2)), now)
    assert not usable(cert(dt.timedelta(minutes=30)), now)
    assert not usable(b"not a certificate", now)
