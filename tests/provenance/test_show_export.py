"""What ran, after the README's hello job: `show` gives the embedded image's digest (its `.flat/`
directory name), the runtime that ran it and the node; `export` writes a Process Run Crate that
the `rocrate` library reads back with the profile's required entities; without the `crate`
extra `export` stops with exit 72 naming it. Real CLI, real wrapper, local backend."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from computeops_grid import worker
from computeops_grid.images.default import PUBLIC
from computeops_grid.logic.export import PROFILE, WFRUN
from tests.conftest import EXAMPLES, Cli
from tests.e2e.helpers import rows, show

SCHEMA = "http://schema.org/"


def test_hello_shows_the_digest_runtime_and_node_and_exports_a_process_run_crate(
    cli: Cli, image_root: Path, tmp_path: Path
) -> None:
    res = cli("submit", str(EXAMPLES / "hello.yaml"), "--wait")
    assert res.code == 0, res.stderr
    hello = res.stdout.splitlines()[0]
    flat = (image_root / PUBLIC).resolve()  # .flat/<hh>/<digest>
    assert flat.parent.parent.name == ".flat"

    ran = show(cli, hello)  # no `get` was run: the report came back with the job
    assert ran["image"]["digest"] == "sha256:" + flat.name
    assert ran["image"]["digest_source"] == "flat-directory"
    assert ran["runtime"]["name"] in worker.load_pilot().RUNTIMES
    assert ran["runtime"]["version"].startswith(ran["runtime"]["name"] + " ")
    assert all(name != ran["runtime"]["name"] for name in ran["runtime"]["refused"])
    assert ran["node"]["hostname"] == socket.gethostname()
    assert ran["node"]["kernel"] == os.uname().release
    assert ran["exit_code"] == 0 and ran["signal"] is None
    assert ran["max_rss_kib"] > 0 and ran["wall_s"] >= 0
    assert datetime.fromisoformat(ran["started_at"]) <= datetime.fromisoformat(ran["ended_at"])
    (status,) = rows(cli("status", hello, "--json"))  # records carry it as listings do
    assert status["image_digest"] == ran["image"]["digest"]
    (row,) = rows(cli("list", "--json"))
    assert (row["image_digest"], row["runtime"], row["node"]) == (
        ran["image"]["digest"], ran["runtime"]["name"], socket.gethostname(),
    )  # fmt: skip

    fail = tmp_path / "fail.yaml"
    fail.write_text(json.dumps({"name": "fail", "image": "docker://busybox:latest", "command": "sh",
                                "arguments": ["-c", "exit 3"]}))  # fmt: skip
    failed = cli("submit", str(fail), "--wait")
    assert failed.code != 0
    bad = failed.stdout.splitlines()[0]

    crate_dir = tmp_path / "crate"
    res = cli("export", hello, bad, "-o", str(crate_dir))
    assert res.code == 0, res.stderr
    check_crate(crate_dir, {hello: ran, bad: show(cli, bad)})


def ref(value: Any) -> str:
    """An @id reference as rocrate reads it: an entity of the crate, or the URL of one outside."""
    return str(getattr(value, "id", value))


def check_crate(crate_dir: Path, runs: dict[str, dict[str, Any]]) -> None:
    """Read the crate back with rocrate; the Process Run Crate profile's REQUIRED checks (the
    root conformsTo the profile's CreativeWork; every CreateAction's instrument a
    SoftwareApplication) and the SHOULDs we fill (mentions, name, description, times, agent,
    actionStatus, containerImage, result), plus what cops-grid promises (digest, node, sha256)."""
    from rocrate.rocrate import ROCrate

    crate = ROCrate(crate_dir)
    root = crate.root_dataset
    profiles = root["conformsTo"] if isinstance(root["conformsTo"], list) else [root["conformsTo"]]
    assert PROFILE in [p.id for p in profiles]
    assert crate.dereference(PROFILE).type == "CreativeWork"
    actions = {a.id: a for a in crate.get_by_type("CreateAction")}
    assert set(actions) == {f"#run-{job_id}" for job_id in runs}
    mentioned = root["mentions"] if isinstance(root["mentions"], list) else [root["mentions"]]
    assert {m.id for m in mentioned} == set(actions)
    for job_id, ran in runs.items():
        action = actions[f"#run-{job_id}"]
        assert action["instrument"].type == "SoftwareApplication"
        runtime = action["instrument"]["softwareRequirements"]
        assert (runtime["name"], runtime["softwareVersion"]) == (
            ran["runtime"]["name"],
            ran["runtime"]["version"],
        )
        assert action["name"] and action["description"].startswith("sh -c ")
        assert datetime.fromisoformat(action["endTime"]) >= datetime.fromisoformat(action["startTime"])
        assert action["agent"].type == "Person"
        assert action["exitCode"] == ran["exit_code"]
        image = action["containerImage"]
        assert image.type == "ContainerImage"
        assert ref(image["additionalType"]) == WFRUN + "DockerImage"
        assert (image["registry"], image["name"], image["tag"]) == (
            "registry.hub.docker.com",
            "library/busybox",
            "latest",
        )
        assert "sha256:" + image["sha256"] == ran["image"]["digest"]
        assert action["location"]["name"] == ran["node"]["hostname"]
        assert [o["name"] for o in action["object"]] == ["job.json"]
        assert json.loads((crate_dir / action["object"][0].id).read_text())["name"] == ran["name"]
        results = {r["name"]: r for r in action["result"]}
        assert "cops-report.json" in results
        for entity in results.values():
            data = (crate_dir / entity.id).read_bytes()
            assert entity["sha256"] == hashlib.sha256(data).hexdigest()
            assert int(entity["contentSize"]) == len(data)
        if ran["state"] == "completed":
            assert ref(action["actionStatus"]) == SCHEMA + "CompletedActionStatus"
            assert (crate_dir / results["result.txt"].id).read_text() == "done\n"
        else:
            assert ref(action["actionStatus"]) == SCHEMA + "FailedActionStatus"
            assert action["exitCode"] == 3 and "exit code 3" in action["error"]


def test_export_without_the_crate_extra_exits_72_naming_it(cops_home: Path, tmp_path: Path) -> None:
    code = "import sys\nsys.modules['rocrate'] = None\nfrom computeops_grid.cli.main import run\nrun()\n"
    proc = subprocess.run(
        [sys.executable, "-c", code, "export", "0123abcd", "-o", str(tmp_path / "crate")],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COPS_GRID_HOME": str(cops_home)},
    )  # fmt: skip
    assert proc.returncode == 72, proc.stderr
    assert "pip install 'computeops-grid[crate]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "crate").exists()


def test_same_image_refuses_a_job_whose_digest_is_not_known(cli: Cli, tmp_path: Path) -> None:
    """The wrapper found no image, so no digest came back: --same-image stores and sends nothing."""
    job = tmp_path / "j.yaml"
    job.write_text(json.dumps({"name": "j", "image": "docker://example.org/no/such:v1", "command": "true"}))
    res = cli("submit", str(job), "--wait")
    assert res.code != 0
    job_id = res.stdout.splitlines()[0]
    assert show(cli, job_id)["report"]["wrapper_exit_reason"] == "image-not-found"
    again = cli("resubmit", job_id, "--same-image")
    assert again.code == 2, again.stderr
    assert f"job {job_id}: no image digest is known" in again.stderr
    assert [r["id"] for r in rows(cli("list", "--json"))] == [job_id]
