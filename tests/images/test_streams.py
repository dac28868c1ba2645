"""One-pass layer reading (digest + inflate) and the parallel unpack's failure path."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from computeops_grid.images.errors import ImageError, UnsafeArchive
from computeops_grid.images.publish import Publisher
from computeops_grid.images.reference import parse_ref
from computeops_grid.images.sources import load_source
from computeops_grid.images.streams import LayerStream

from .helpers import layer_tar, member, oci_layout

TAR = layer_tar([member(f"d/f{i}", data=bytes([i % 251]) * (5000 + i)) for i in range(300)])


def _read_all(blob: bytes, digest: str | None = None, step: int = 10240) -> bytes:
    stream = LayerStream(io.BytesIO(blob), digest or "sha256:" + hashlib.sha256(blob).hexdigest())
    parts = []
    while chunk := stream.read(step):
        parts.append(chunk)
    stream.check()
    return b"".join(parts)


@pytest.mark.parametrize(
    "blob",
    [
        TAR,
        gzip.compress(TAR, 1),
        gzip.compress(TAR[:70000]) + gzip.compress(TAR[70000:]),
        gzip.compress(TAR) + b"\0" * 700,
    ],
    ids=["plain", "gzip", "gzip-two-members", "gzip-zero-padding"],
)
def test_layer_stream_gives_the_tar(blob: bytes) -> None:
    assert _read_all(blob) == TAR
    assert _read_all(blob, step=1 << 20) == TAR


def test_digest_mismatch_and_truncation_are_errors() -> None:
    blob = gzip.compress(TAR)
    with pytest.raises(ImageError, match="does not match its digest"):
        _read_all(blob, "sha256:" + "0" * 64)
    with pytest.raises(ImageError, match="truncated"):
        _read_all(blob[: len(blob) // 2])
    with pytest.raises(ImageError, match="after the gzip stream"):
        _read_all(blob + b"garbage")


def test_bzip2_layer_is_read_by_tarfile(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w|bz2") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    blob = buf.getvalue()
    stream = LayerStream(io.BytesIO(blob), "sha256:" + hashlib.sha256(blob).hexdigest())
    with tarfile.open(fileobj=stream, mode="r|*") as tar:  # type: ignore[call-overload]
        assert [m.name for m in tar] == ["hello"]


def test_a_failing_layer_stops_the_publish_and_reports_its_own_error(tmp_path: Path) -> None:
    big = [member(f"big/{i}", data=b"x" * 100) for i in range(3000)]
    bad = [member("ok", data=b"1"), member("../escape", data=b"x")]
    repo = tmp_path / "repo"
    image = load_source(f"oci:{oci_layout(tmp_path / 'oci', [big, bad])}")[0]
    with pytest.raises(UnsafeArchive) as err:
        Publisher(repo).publish(image, parse_ref("docker://t/fail:1"))
    assert [r.path for r in err.value.refusals] == ["../escape"]
    assert not list((repo / ".cops" / "tmp").iterdir()), "staging removed after the threads stopped"
    assert not list((repo / ".layers").glob("??/*")), "nothing committed"
