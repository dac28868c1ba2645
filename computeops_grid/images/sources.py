"""Image sources: OCI image layouts, oci-archives, docker-archives, and anything skopeo reads.

``load_source(spec)`` returns the images a SOURCE holds, each with its manifest, config and
layer blobs; nothing is written to disk (archives are read member by member, by digest name).
A spec is ``oci:DIR[:REF]``, ``oci-archive:FILE[:REF]``, ``docker-archive:FILE``, a plain path
(kind guessed from its content), a registry image (``docker://REG/REPO:TAG``, or ``https://``,
``http://`` for a plain-HTTP registry), read by :mod:`~computeops_grid.images.remote` with
blobs streamed as they are unpacked, or a skopeo transport (``containers-storage:NAME``,
``docker-daemon:NAME``), which is first copied to an OCI layout.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from computeops_grid import extras
from computeops_grid.images.errors import ImageError, ToolMissing
from computeops_grid.images.reference import ImageRef, parse_ref

if TYPE_CHECKING:
    from computeops_grid.images.remote import Registries

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
SKOPEO_TRANSPORTS = ("containers-storage:", "docker-daemon:", "dir:")
REGISTRY_SCHEMES = ("docker://", "https://", "http://")
BlobOpener = Callable[[str], "contextmanager[IO[bytes]]"]  # type: ignore[valid-type]


@dataclass
class Layer:
    digest: str
    media_type: str = ""
    size: int = -1


@dataclass
class SourceImage:
    """One image: raw manifest and config bytes (digests verified) and its layers."""

    manifest: bytes
    manifest_digest: str
    config: bytes
    config_digest: str
    layers: list[Layer]
    open_blob: Callable[[str], Any]  # digest -> context manager yielding a binary file
    name: ImageRef | None = None
    origin: str = ""
    config_json: dict[str, Any] = field(default_factory=dict)

    @property
    def config_hex(self) -> str:
        return self.config_digest.split(":", 1)[1]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _check_digest(digest: str, where: str) -> str:
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise ImageError(
            f"{where}: unsupported or invalid digest {digest!r}", hint="only sha256 is supported"
        )
    return digest


def load_source(
    spec: str, *, workdir: Path | None = None, registries: Registries | None = None
) -> list[SourceImage]:
    """All images of SOURCE ``spec``. ``workdir`` receives skopeo copies of storage images."""
    kind, location, ref = _classify(spec)
    if kind == "registry":
        with extras.needed("images from a registry", "images"):
            from computeops_grid.images.remote import load_remote  # noqa: PLC0415 - needs requests

        return [load_remote(spec, registries)]
    if kind == "skopeo":
        if workdir is None:
            raise ImageError(f"{spec}: needs a work directory to copy the image into")
        return _from_skopeo(spec, workdir)
    path = Path(location)
    if not path.exists():
        raise ImageError(
            f"image source {location!r} does not exist", hint="give an OCI layout dir or an archive"
        )
    if kind == "oci":
        return _select(_OciReader(_dir_opener(path), spec).images(), ref, spec)
    if kind == "oci-archive":
        return _select(_OciReader(_tar_opener(path), spec).images(), ref, spec)
    return _docker_archive(path, spec)


def _classify(spec: str) -> tuple[str, str, str]:
    for prefix in ("oci-archive:", "docker-archive:", "oci:"):
        if spec.startswith(prefix):
            location, _, ref = spec[len(prefix) :].partition(":")
            return prefix[:-1], location, ref
    if spec.startswith(REGISTRY_SCHEMES):
        return "registry", spec, ""
    if spec.startswith(SKOPEO_TRANSPORTS):
        return "skopeo", spec, ""
    path = Path(spec)
    if path.is_dir():
        if (path / "oci-layout").is_file():
            return "oci", spec, ""
        raise ImageError(f"{spec}: a directory but not an OCI image layout (no oci-layout file)")
    if path.is_file():
        try:
            with tarfile.open(path) as tar:
                names = {n.lstrip("./") if n.startswith("./") else n for n in tar.getnames()}
        except (tarfile.TarError, OSError) as exc:
            raise ImageError(f"{spec}: not a tar archive ({exc})") from None
        if "oci-layout" in names:
            return "oci-archive", spec, ""
        if "manifest.json" in names:
            return "docker-archive", spec, ""
        raise ImageError(f"{spec}: a tar archive that is neither an oci-archive nor a docker-archive")
    raise ImageError(
        f"unknown image source {spec!r}",
        hint="use oci:DIR, oci-archive:FILE, docker-archive:FILE, containers-storage:NAME or list.yaml",
    )


def _dir_opener(root: Path) -> Callable[[str], Any]:
    @contextmanager
    def opener(name: str) -> Iterator[IO[bytes]]:
        target = root / name
        if target.is_symlink() or not target.is_file():
            raise ImageError(f"{root}: blob {name} missing", hint="the OCI layout is incomplete")
        with target.open("rb") as fh:
            yield fh

    return opener


def _tar_opener(path: Path) -> Callable[[str], Any]:
    """Open archive members by name; each open re-opens the file (nothing stays open)."""
    members: dict[str, tuple[int, int]] = {}
    try:
        with tarfile.open(path) as archive:
            for member in archive.getmembers():
                name = member.name[2:] if member.name.startswith("./") else member.name
                if member.isreg():
                    members[name] = (member.offset_data, member.size)
    except (tarfile.TarError, OSError) as exc:
        raise ImageError(f"{path}: cannot read archive ({exc})") from None

    @contextmanager
    def opener(name: str) -> Iterator[IO[bytes]]:
        if name not in members:
            raise ImageError(f"{path}: member {name} missing", hint="the archive is incomplete")
        offset, size = members[name]
        with path.open("rb") as fh:
            fh.seek(offset)
            yield cast(IO[bytes], _Slice(fh, size))

    return opener


class _Slice:
    """Reads at most ``size`` bytes of ``fh`` (one archive member)."""

    def __init__(self, fh: IO[bytes], size: int) -> None:
        self.fh = fh
        self.left = size

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.fh.read(size)
        self.left -= len(data)
        return data


def _read(opener: Callable[[str], Any], name: str, limit: int = 64 << 20) -> bytes:
    with opener(name) as fh:
        data: bytes = fh.read(limit + 1)
    if len(data) > limit:
        raise ImageError(f"{name}: larger than {limit} bytes, refusing to read it as metadata")
    return data


def _json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ImageError(f"{where}: invalid JSON ({exc})") from None


class _OciReader:
    def __init__(self, opener: Callable[[str], Any], spec: str) -> None:
        self.opener = opener
        self.spec = spec

    def blob(self, digest: str) -> bytes:
        data = _read(self.opener, "blobs/sha256/" + _check_digest(digest, self.spec).split(":")[1])
        if sha256_digest(data) != digest:
            raise ImageError(f"{self.spec}: blob {digest} does not match its digest (corrupt source)")
        return data

    def open_blob(self, digest: str) -> Any:
        return self.opener("blobs/sha256/" + _check_digest(digest, self.spec).split(":")[1])

    def images(self) -> list[tuple[str, SourceImage]]:
        index = _json(_read(self.opener, "index.json"), f"{self.spec}: index.json")
        result: list[tuple[str, SourceImage]] = []
        for desc in index.get("manifests") or []:
            annotations = desc.get("annotations") or {}
            ref = annotations.get("org.opencontainers.image.ref.name", "")
            full = annotations.get("io.containerd.image.name", "")
            image = self._image(desc)
            if image is not None:
                name = full or (ref if ("/" in ref or ":" in ref) else "")
                image.name = parse_ref(name) if name else None
                result.append((ref, image))
        return result

    def _image(self, desc: dict[str, Any]) -> SourceImage | None:
        manifest = self.blob(desc.get("digest", ""))
        doc = _json(manifest, f"{self.spec}: manifest")
        if is_index(doc, desc.get("mediaType", "")):
            choice = pick_platform(doc)
            return self._image(choice) if choice else None
        config_digest, layers = image_parts(doc, self.spec)
        config = self.blob(config_digest)
        return SourceImage(
            manifest=manifest,
            manifest_digest=sha256_digest(manifest),
            config=config,
            config_digest=config_digest,
            layers=layers,
            open_blob=self.open_blob,
            origin=self.spec,
            config_json=_json(config, f"{self.spec}: config"),
        )


def _is_amd64(platform: dict[str, Any]) -> bool:
    return platform.get("os", "linux") == "linux" and platform.get("architecture") in ("amd64", None)


def is_index(doc: dict[str, Any], media_type: str = "") -> bool:
    """A manifest list / image index (several platforms), not an image manifest."""
    return doc.get("mediaType") in INDEX_TYPES or media_type in INDEX_TYPES


def pick_platform(index: dict[str, Any]) -> dict[str, Any] | None:
    """The descriptor of the linux/amd64 image of ``index``, if it has one."""
    choices = [m for m in index.get("manifests") or [] if _is_amd64(m.get("platform") or {})]
    return choices[0] if choices else None


def image_parts(doc: dict[str, Any], where: str) -> tuple[str, list[Layer]]:
    """(config digest, layers without foreign ones) of an image manifest."""
    if doc.get("schemaVersion") == 1:
        raise ImageError(
            f"{where}: a schema 1 manifest, which this publisher does not read",
            hint="push the image again with a current client (skopeo copy writes schema 2 / OCI)",
        )
    config_digest = _check_digest((doc.get("config") or {}).get("digest", ""), where)
    layers = [
        Layer(_check_digest(lay.get("digest", ""), where), lay.get("mediaType", ""), lay.get("size", -1))
        for lay in doc.get("layers") or []
        if lay.get("mediaType") != FOREIGN
    ]
    return config_digest, layers


def parse_json(data: bytes, where: str) -> Any:
    return _json(data, where)


def _select(images: list[tuple[str, SourceImage]], ref: str, spec: str) -> list[SourceImage]:
    if not images:
        raise ImageError(f"{spec}: no linux/amd64 image in this layout")
    if not ref:
        return [image for _, image in images]
    chosen = [image for name, image in images if name == ref]
    if not chosen:
        known = ", ".join(sorted(name for name, _ in images if name)) or "none"
        raise ImageError(f"{spec}: no image tagged {ref!r}", hint=f"tags in this layout: {known}")
    return chosen


def _docker_archive(path: Path, spec: str) -> list[SourceImage]:
    opener = _tar_opener(path)
    entries = _json(_read(opener, "manifest.json"), f"{spec}: manifest.json")
    images = []
    for entry in entries if isinstance(entries, list) else []:
        config = _read(opener, str(entry.get("Config", "")))
        config_json = _json(config, f"{spec}: config")
        diff_ids = (config_json.get("rootfs") or {}).get("diff_ids") or []
        paths = entry.get("Layers") or []
        if len(diff_ids) != len(paths):
            raise ImageError(f"{spec}: {len(paths)} layers but {len(diff_ids)} diff_ids in the config")
        layer_paths = {_check_digest(d, spec): str(p) for d, p in zip(diff_ids, paths)}
        layers = [Layer(d, "application/vnd.docker.image.rootfs.diff.tar") for d in diff_ids]
        manifest = _synth_manifest(sha256_digest(config), len(config), layers)

        def open_blob(digest: str, _paths: dict[str, str] = layer_paths) -> Any:
            return opener(_paths[digest])

        tags = entry.get("RepoTags") or []
        images.append(
            SourceImage(
                manifest=manifest,
                manifest_digest=sha256_digest(manifest),
                config=config,
                config_digest=sha256_digest(config),
                layers=layers,
                open_blob=open_blob,
                name=parse_ref(tags[0]) if tags else None,
                origin=spec,
                config_json=config_json,
            )
        )
    if not images:
        raise ImageError(f"{spec}: manifest.json lists no image")
    return images


def _synth_manifest(config_digest: str, config_size: int, layers: list[Layer]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{"mediaType": lay.media_type, "digest": lay.digest, "size": lay.size} for lay in layers],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _from_skopeo(spec: str, workdir: Path) -> list[SourceImage]:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        raise ToolMissing(f"{spec}: skopeo is needed to read this source", hint="apt-get install skopeo")
    target = workdir / "skopeo-oci"
    if target.exists():
        shutil.rmtree(target)
    argv = [skopeo, "copy", "--quiet", "--dest-compress=false", spec, f"oci:{target}:image"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ImageError(
            f"{spec}: skopeo copy failed: {proc.stderr.strip()[-500:]}",
            hint="check the image name (skopeo list-tags / buildah images)",
        )
    images = _select(_OciReader(_dir_opener(target), spec).images(), "image", spec)
    for image in images:
        image.origin = spec
        image.name = _name_of(spec)
    return images


def _name_of(spec: str) -> ImageRef | None:
    """The image name inside a skopeo spec, if it is one (not an image ID)."""
    name = spec.split(":", 1)[1].lstrip("/")
    if name.startswith("["):
        name = name.partition("]")[2]
    try:
        return parse_ref(name)
    except ImageError:
        return None
