"""Hand-made OCI layouts for tests: each layer is a list of tarfile members built in Python."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import tarfile
from pathlib import Path

Member = tuple[str, bytes, bytes, int, str]


def member(
    name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644, link: str = ""
) -> Member:
    return (name, kind, data, mode, link)


def layer_tar(members: list[Member]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, mode, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = mode
            info.linkname = link
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def _blob(root: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def oci_layout(root: Path, layers: list[list[Member]], cmd: str = "/bin/sh") -> Path:
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    tars = [layer_tar(m) for m in layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": [cmd]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            **_blob(root, json.dumps(config).encode()),
        },
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **_blob(root, t)} for t in tars],
    }
    desc = _blob(root, json.dumps(manifest).encode())
    index = {"schemaVersion": 2, "manifests": [{"mediaType": manifest["mediaType"], **desc}]}
    (root / "index.json").write_text(json.dumps(index))
    return root


@functools.cache
def _busybox() -> bytes:
    return Path("/bin/busybox").read_bytes()


def busybox_image(root: Path, marker: str, *, base: str = "") -> Path:
    """An OCI layout of two layers: busybox-static (the same bytes in every image, so registries
    and the publisher share it; ``base`` makes a different base) and ``/data/marker.txt``."""
    bottom = [
        member("bin/", tarfile.DIRTYPE, mode=0o755),
        member("bin/busybox", data=_busybox(), mode=0o755),
        member("bin/sh", tarfile.SYMTYPE, link="busybox"),
    ]
    if base:
        bottom.append(member("etc/base", data=base.encode()))
    top = [member("data/", tarfile.DIRTYPE, mode=0o755), member("data/marker.txt", data=marker.encode())]
    return oci_layout(root, [bottom, top])
