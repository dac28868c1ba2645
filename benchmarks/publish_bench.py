"""Publish time of one image vs ``umoci unpack`` (same OCI layout, same run), and re-publish time.

The image is built here from host files (gzip layers, like a registry image): busybox, a
Python stdlib tree and /usr/share/doc, three layers, the second deleting part of the first.
Goals (issue 4): publish / umoci ratio <= 1.0; re-publish of the unchanged image <= 0.2 s.
Wall time and CPU time (user + sys, all threads; umoci's as a child process) are both printed:
on a shared machine the CPU time is the steadier of the two.

    python benchmarks/publish_bench.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

from computeops_grid.images.publish import Publisher
from computeops_grid.images.reference import parse_ref
from computeops_grid.images.sources import load_source

NAME = "docker://bench/image:1"
OCI = "application/vnd.oci.image."


def _blob(root: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _keep(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    skip = member.isdev() or "site-packages" in member.name or "__pycache__" in member.name
    return None if skip else member


def _layer(add: list[tuple[Path, str]], whiteouts: list[str]) -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for src, arc in add:
            tar.add(src, arcname=arc, filter=_keep)
        for path in whiteouts:
            parent, _, name = path.rpartition("/")
            info = tarfile.TarInfo(f"{parent}/.wh.{name}")
            tar.addfile(info)
    plain = raw.getvalue()
    return subprocess.run(["gzip", "-1", "-n"], input=plain, capture_output=True, check=True).stdout, (
        "sha256:" + hashlib.sha256(plain).hexdigest()
    )


def build_layout(root: Path) -> int:
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    layers = [
        _layer([(Path("/bin/busybox"), "bin/busybox"), (stdlib, "usr/lib/python")], []),
        _layer(
            [(Path("/usr/share/doc"), "usr/share/doc")], ["usr/lib/python/test", "usr/lib/python/idlelib"]
        ),
        _layer([(stdlib / "json", "usr/lib/python/json")], []),
    ]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/busybox", "sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            **_blob(root, json.dumps(config).encode()),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_blob(root, gz)}
            for gz, _ in layers
        ],
    }
    desc = _blob(root, json.dumps(manifest).encode())
    annotations = {"org.opencontainers.image.ref.name": "bench"}
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": manifest["mediaType"], **desc, "annotations": annotations}],
    }
    (root / "index.json").write_text(json.dumps(index))
    return sum(len(gz) for gz, _ in layers)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def time_umoci(layout: Path, work: Path) -> tuple[float, float]:
    """(wall, cpu) of one ``umoci unpack``."""
    bundle = work / "bundle"
    cpu, start = _children_cpu(), time.perf_counter()
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{layout}:bench", str(bundle)], check=True)
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    shutil.rmtree(bundle)
    return elapsed, cpu


def time_publish(layout: Path, work: Path) -> tuple[float, float, float]:
    """(wall, cpu) of a first publish, and the wall time of re-publishing it."""
    repo = work / "repo"
    image = load_source(f"oci:{layout}")[0]
    cpu, start = _own_cpu(), time.perf_counter()
    Publisher(repo).publish(image, parse_ref(NAME))
    first, cpu = time.perf_counter() - start, _own_cpu() - cpu
    start = time.perf_counter()
    result = Publisher(repo).publish(load_source(f"oci:{layout}")[0], parse_ref(NAME))
    again = time.perf_counter() - start
    assert not result.unpacked
    shutil.rmtree(repo)
    return first, cpu, again


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("umoci") is None:
        print("umoci not installed: cannot compare", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cops-publish-bench-") as tmp:
        work = Path(tmp)
        size = build_layout(work / "oci")
        print(f"image: 3 gzip layers, {size / 1e6:.1f} MB compressed")
        umoci: list[tuple[float, float]] = []
        publish: list[tuple[float, float]] = []
        again: list[float] = []
        for _ in range(args.rounds):  # interleaved so machine noise hits both alike
            umoci.append(time_umoci(work / "oci", work))
            first, cpu, second = time_publish(work / "oci", work)
            publish.append((first, cpu))
            again.append(second)
    u, p = _report("umoci unpack --rootless", umoci), _report("cops-grid publish", publish)
    print(f"ratio publish / umoci        wall {p[0] / u[0]:.2f}  cpu {p[1] / u[1]:.2f}  (goal <= 1.0)")
    print(f"re-publish unchanged image   median {statistics.median(again):.4f} s  (goal <= 0.2 s)")
    return 0


def _report(label: str, runs: list[tuple[float, float]]) -> tuple[float, float]:
    wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    each = ", ".join(f"{w:.2f}/{c:.2f}" for w, c in runs)
    print(f"{label:28s} median wall {wall:.3f} s  cpu {cpu:.3f} s  (wall/cpu: {each})")
    return wall, cpu


if __name__ == "__main__":
    sys.exit(main())
