"""``cops-grid image sync`` of a 100-image wishlist from a registry on loopback, beside ``skopeo``.

A plain-HTTP ``docker-registry`` (tests/services/registry.py) is filled with 100 images: 10
repositories of 10 tags, every image on the shared busybox layer plus one of 5 "family" layers
(a piece of the Python standard library) and its own small top layer (gzip layers, pushed
with ``skopeo copy``). The wishlist names 5 repositories with a tag wildcard and the 50 images
of the other 5 one by one. Printed, each beside the ``skopeo`` floor measured in the same run:

* first sync into an empty repository   vs  ``skopeo copy`` of the 100 images into one OCI layout
* re-sync with nothing changed           vs  ``skopeo inspect --raw`` of the 100 (goal < 5 s)
* re-sync after one tag moved            vs  ``skopeo copy`` of that one image

The sync times are of the real CLI (a new process each, as a cron job runs it).

    python3 benchmarks/sync_bench.py
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.services.registry

from tests.services.registry import Registry, require_tools, start_registry

FAMILIES = ("asyncio", "email", "xml", "unittest", "json")
REPOS, TAGS = 10, 10
CLI = [sys.executable, "-c", "from computeops_grid.cli.main import run; run()"]


def _tar(files: list[tuple[str, bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for name, data, mode in files:
            parts = name.split("/")[:-1]
            for n in range(1, len(parts) + 1):
                folder = "/".join(parts[:n])
                if folder not in dirs:
                    dirs.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _family(name: str) -> list[tuple[str, bytes, int]]:
    root = Path(sysconfig.get_paths()["stdlib"]) / name
    return [
        (f"usr/lib/python/{name}/{p.relative_to(root)}", p.read_bytes(), 0o644)
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    ]


def _top(repo: int, tag: int, salt: str = "") -> list[tuple[str, bytes, int]]:
    seed = f"{repo}-{tag}-{salt}".encode()
    blob = b"".join(hashlib.sha256(seed + bytes([i % 256, i // 256])).digest() for i in range(2048))
    files = [(f"app/data/f{i}.txt", seed + b" %d\n" % i, 0o644) for i in range(20)]
    return [*files, ("app/blob.bin", blob, 0o644)]


class Layout:
    """One OCI layout holding every image (blobs shared on disk), each under its own ref name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.manifests: list[dict[str, object]] = []
        self.layers: dict[str, tuple[dict[str, object], str]] = {}

    def _blob(self, data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    def layer(self, key: str, files: list[tuple[str, bytes, int]]) -> tuple[dict[str, object], str]:
        if key not in self.layers:
            plain = _tar(files)
            desc = self._blob(gzip.compress(plain, compresslevel=1, mtime=0))
            desc["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
            self.layers[key] = (desc, "sha256:" + hashlib.sha256(plain).hexdigest())
        return self.layers[key]

    def image(self, ref: str, layers: list[tuple[dict[str, object], str]]) -> None:
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]},
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                **self._blob(json.dumps(config).encode()),
            },
            "layers": [desc for desc, _ in layers],
        }
        desc = self._blob(json.dumps(manifest).encode())
        self.manifests.append(
            {
                "mediaType": manifest["mediaType"],
                **desc,
                "annotations": {"org.opencontainers.image.ref.name": ref},
            }
        )

    def write_index(self) -> None:
        (self.root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": self.manifests}))


def build(root: Path) -> tuple[Layout, int]:
    layout = Layout(root)
    busybox = layout.layer("busybox", [("bin/busybox", Path("/bin/busybox").read_bytes(), 0o755)])
    families = [layout.layer(f"family-{name}", _family(name)) for name in FAMILIES]
    for repo in range(REPOS):
        for tag in range(TAGS):
            top = layout.layer(f"top-{repo}-{tag}", _top(repo, tag))
            layout.image(f"r{repo}-t{tag}", [busybox, families[(repo + tag) % len(families)], top])
    moved = layout.layer("top-moved", _top(0, 0, "moved"))
    layout.image("moved", [busybox, families[0], moved])
    layout.write_index()
    size = sum(int(desc["size"]) for desc, _ in layout.layers.values())  # type: ignore[call-overload]
    return layout, size


def push_all(registry: Registry, layout: Path) -> None:
    names = [(f"r{r}-t{t}", f"bench/repo{r}:{t}") for r in range(REPOS) for t in range(TAGS)]

    def push(pair: tuple[str, str]) -> None:
        for attempt in range(3):  # concurrent uploads of one blob to two repositories race at times
            try:
                registry.push_ref(layout, *pair)
                return
            except RuntimeError:
                if attempt == 2:
                    raise
                time.sleep(0.5)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(push, names))


def wishlist(path: Path, host: str) -> Path:
    entries = [f"http://{host}/bench/repo{r}:*" for r in range(REPOS // 2)]
    entries += [f"http://{host}/bench/repo{r}:{t}" for r in range(REPOS // 2, REPOS) for t in range(TAGS)]
    path.write_text(
        json.dumps({"version": 1, "user": "bench", "cvmfs_repo": "unpacked.example.org", "input": entries})
    )
    return path


def timed(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])}... failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return elapsed, proc.stdout


def skopeo_copy(host: str, names: list[str], dest: Path) -> float:
    start = time.perf_counter()
    for name in names:
        timed(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                f"docker://{host}/{name}",
                f"oci:{dest}:{name.replace('/', '_').replace(':', '-')}",
            ]
        )
    return time.perf_counter() - start


def skopeo_inspect(host: str, names: list[str]) -> float:
    start = time.perf_counter()
    for name in names:
        timed(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host}/{name}"])
    return time.perf_counter() - start


def sync(wish: Path, repo: Path) -> tuple[float, str]:
    """(wall time of the CLI, what it did: counts and the time spent inside the sync itself)."""
    elapsed, out = timed([*CLI, "image", "sync", str(wish), "--repo-root", str(repo), "--json"])
    report = json.loads(out)
    counts = ", ".join(f"{v} {k}" for k, v in report["counts"].items() if v)
    return elapsed, f"{counts}; {report['seconds']:.2f} s in the sync"


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    try:
        require_tools()
    except BaseException as exc:  # pytest.skip outside pytest
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="cops-sync-bench-"))
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    registry = start_registry(work / "registry")
    try:
        layout, size = build(work / "oci")
        print(
            f"images: {REPOS * TAGS} ({REPOS} repositories x {TAGS} tags), {len(layout.layers)} distinct layers, "
            f"{size / 1e6:.1f} MB compressed; registry {registry.host} (docker-registry, plain HTTP)"
        )
        start = time.perf_counter()
        push_all(registry, work / "oci")
        print(f"pushed with skopeo in {time.perf_counter() - start:.1f} s")
        names = [f"bench/repo{r}:{t}" for r in range(REPOS) for t in range(TAGS)]
        wish, repo = wishlist(work / "wishlist.yaml", registry.host), work / "repo"
        floor_first = skopeo_copy(registry.host, names, work / "skopeo-oci")
        first, counts_first = sync(wish, repo)
        floor_head = skopeo_inspect(registry.host, names)
        again, counts_again = sync(wish, repo)
        registry.push_ref(work / "oci", "moved", "bench/repo0:0")
        floor_moved = skopeo_copy(registry.host, ["bench/repo0:0"], work / "skopeo-oci")
        moved, counts_moved = sync(wish, repo)
        timed([*CLI, "image", "verify", "--repo-root", str(repo), "--json"])  # exits non-zero if not
        rows = [
            ("first sync (100 images)", first, counts_first, "skopeo copy x100", floor_first),
            ("re-sync, nothing changed", again, counts_again, "skopeo inspect --raw x100", floor_head),
            ("re-sync, one tag moved", moved, counts_moved, "skopeo copy x1", floor_moved),
        ]
        print(f"\n{'':26s}{'cops-grid image sync':>21s}   {'skopeo floor, same run':>34s}")
        for label, ours, counts, what, floor in rows:
            print(f"{label:26s}{ours:19.2f} s   {what:>26s} {floor:6.2f} s   ({counts})")
        print("(cops-grid: the CLI's wall time, a new process each; image verify passed afterwards)")
        print(
            f"\ngoal: re-sync with nothing changed < 5 s: {'met' if again < 5 else 'NOT met'} ({again:.2f} s)"
        )
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
