"""Exact reruns through the real CLI, the real wrapper and a real image repository: a job runs
an image, the tag moves to other content, `resubmit --same-image` runs the old content again
(proven by the checksum of a file inside it), a plain `resubmit` the new one; once the old
digest is gone from the repository the wrapper refuses (242, naming it) and runs nothing else.
On the local backend and on the session's real Slurm."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from computeops_grid.bench.daemons import world_dir
from computeops_grid.jobs.exit_codes import code
from tests.conftest import Cli
from tests.e2e.helpers import rows, show
from tests.images.helpers import busybox_image

TAG = "docker://example.org/prov/app:v1"
OLD, NEW = "old content\n", "new content\n"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def repo() -> Iterator[Path]:
    """An image repository of this test, readable by whoever Slurm runs jobs as."""
    root = world_dir("cops-prov-images-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def publish(cli: Cli, repo: Path, layout_dir: Path, marker: str) -> str:
    """Publish a busybox image with /data/marker.txt under TAG; its digest (the .flat name)."""
    layout = busybox_image(layout_dir, marker)
    res = cli("image", "publish", f"oci:{layout}", "--repo-root", str(repo), "--name", TAG, "--json")
    assert res.code == 0, res.stderr
    flat = (repo / "example.org" / "prov" / "app:v1").resolve()
    assert flat.parent.parent.name == ".flat"
    return "sha256:" + flat.name


def configure(home: Path, repo: Path, backend: str, settings: dict[str, Any] | None) -> None:
    config = yaml.safe_load((home / "config.yaml").read_text()) or {}
    config["image_root"] = str(repo)
    if settings is not None:
        config.setdefault("backends", {})[backend] = settings
    (home / "config.yaml").write_text(yaml.safe_dump(config))


def run_copy(cli: Cli, job_id: str, *options: str) -> tuple[str, str]:
    """resubmit --wait: (new job id, what the payload printed)."""
    res = cli("resubmit", job_id, "--wait", *options, timeout=240)
    assert res.code == 0, res.stderr
    new_id, *printed = res.stdout.splitlines()
    return new_id, "\n".join(printed)


@pytest.fixture(params=["local", pytest.param("slurm", marks=[pytest.mark.service, pytest.mark.slow])])
def backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any] | None]:
    if request.param == "local":
        return "local", None
    cluster = request.getfixturevalue("slurm_cluster")
    return "slurm", {"slurm_conf": str(cluster.conf)}


def test_same_image_reruns_the_digest_that_ran_after_the_tag_moved(
    cli: Cli, cops_home: Path, repo: Path, tmp_path: Path, backend: tuple[str, dict[str, Any] | None]
) -> None:
    name, settings = backend
    configure(cops_home, repo, name, settings)
    old_digest = publish(cli, repo, tmp_path / "old", OLD)
    job = tmp_path / "job.yaml"
    job.write_text(
        json.dumps(
            {
                "name": "marker",
                "image": TAG,
                "command": "busybox",
                "arguments": ["sha256sum", "/data/marker.txt"],
            }
        )
    )
    res = cli("submit", str(job), "--backend", name, "--wait", timeout=240)
    assert res.code == 0, res.stderr
    first, printed = res.stdout.splitlines()[0], res.stdout
    assert sha(OLD) in printed
    ran = show(cli, first)
    assert ran["image"]["digest"] == old_digest
    assert ran["runtime"]["name"]

    new_digest = publish(cli, repo, tmp_path / "new", NEW)  # the tag moves
    assert new_digest != old_digest

    pinned_id, pinned_out = run_copy(cli, first, "--same-image")
    assert sha(OLD) in pinned_out and sha(NEW) not in pinned_out
    pinned = show(cli, pinned_id)
    assert pinned["parent_id"] == first
    assert pinned["image"]["digest"] == old_digest
    assert pinned["job"]["image"].endswith("@" + old_digest)

    plain_id, plain_out = run_copy(cli, first)
    assert sha(NEW) in plain_out and sha(OLD) not in plain_out
    assert show(cli, plain_id)["image"]["digest"] == new_digest

    listed = rows(cli("list", "--image-digest", old_digest[:19], "--json"))  # a prefix will do
    assert sorted(r["id"] for r in listed) == sorted([first, pinned_id])
    assert {(r["image_digest"], r["runtime"]) for r in listed} == {(old_digest, ran["runtime"]["name"])}

    gc = cli("image", "gc", "--repo-root", str(repo), "--json")  # the old flat is unreferenced now
    assert gc.code == 0, gc.stderr
    assert not (repo / ".flat" / old_digest[7:9] / old_digest[7:]).exists()
    gone = cli("resubmit", first, "--wait", "--same-image", timeout=240)
    assert gone.code != 0
    refused = show(cli, gone.stdout.splitlines()[0])
    assert refused["state"] == "failed"
    assert refused["exit_code"] == code("image-not-found")
    assert refused["report"]["wrapper_exit_reason"] == "image-not-found"
    assert old_digest in refused["report"]["error"]
    assert refused["report"]["runtime"] is None  # nothing ran: not the tag's new image either
    assert os.path.isdir(repo / ".flat" / new_digest[7:9] / new_digest[7:])
