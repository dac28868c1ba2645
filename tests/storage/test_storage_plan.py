"""Storage URLs in a job file: validation naming the field; `submit --dry-run` says who moves each file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from computeops_grid.errors import ExitCode, JobFileError
from computeops_grid.jobs.loader import validate_spec
from computeops_grid.logic.storage_plan import movers
from tests.conftest import Cli

BASE = {"name": "t", "image": "docker://busybox:latest", "command": "true"}
JOB = {
    **BASE,
    "inputs": [
        "root://se.example.org//store/data/run1.root",
        {"url": "s3://bucket/calib.db", "name": "c.db"},
    ],
    "outputs": ["log.txt", {"path": "hist-*.root", "to": "davs://se.example.org:443/store/user/me/"}],
}


def test_dry_run_names_the_mover_of_each_file(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "j.yaml"
    path.write_text(json.dumps(JOB))
    result = cli("submit", str(path), "--dry-run")
    assert result.code == 0, result.stderr
    assert "--stage-in=run1.root=root://se.example.org//store/data/run1.root" in result.stdout
    lines = [" ".join(line.split()) for line in result.stderr.splitlines() if line.startswith("storage:")]
    assert lines == [
        "storage: t: run1.root <- root://se.example.org//store/data/run1.root: pilot wrapper on the node, "
        "before the payload: xrdcp (gfal-copy if absent); checked: adler32 from xrdfs query checksum",
        "storage: t: c.db <- s3://bucket/calib.db: pilot wrapper on the node, before the payload: "
        "the wrapper's S3 client (SigV4, keys from the node); checked: MD5 against the ETag",
        "storage: t: hist-*.root -> davs://se.example.org:443/store/user/me/: pilot wrapper on the node, "
        "after the payload: curl (Python's HTTPS if absent); checked: adler32 from HEAD Want-Digest",
    ]


def test_on_arc_the_ce_stages_what_its_plugins_speak() -> None:
    spec = validate_spec(JOB)
    lines = movers("arc", spec)
    assert lines[0].endswith("A-REX data staging on the CE, before the job starts")  # root://
    assert "pilot wrapper" in lines[1]  # s3://: no S3 plugin for A-REX in Debian
    assert "after the payload" in lines[2]


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"inputs": ["ftp://h/f"]}, "inputs", "entry 1: 'ftp://h/f': the scheme ftp:// is not supported"),
        ({"inputs": [{"url": "root://h/store/f"}]}, "inputs", "needs a double slash before the path"),
        ({"inputs": [{"url": "s3://b/k", "nme": "x"}]}, "inputs", "unknown key(s) nme"),
        ({"outputs": [{"path": "a.txt"}]}, "outputs", "needs `to:`"),
        ({"outputs": [{"path": "../a", "to": "s3://b/k"}]}, "outputs", "must be a relative path"),
        ({"outputs": ["root://h//store/x"]}, "outputs", "write {path: ..., to: URL}"),
    ],
)
def test_bad_storage_entries_name_the_field(fields: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(JobFileError) as caught:
        validate_spec({**BASE, **fields})
    assert caught.value.field == field
    assert reason in str(caught.value.reason)


def test_credentials_in_a_url_are_refused_and_never_echoed() -> None:
    with pytest.raises(JobFileError) as caught:
        validate_spec({**BASE, "outputs": [{"path": "a", "to": "s3://AKIA:hunter2@bucket/k"}]})
    assert "never the job file" in caught.value.reason or "not the job" in caught.value.reason
    assert "hunter2" not in str(caught.value) and "AKIA" not in str(caught.value)
    with pytest.raises(JobFileError) as caught:
        validate_spec({**BASE, "inputs": ["https://h/f?access_token=sekrit"]})
    assert "sekrit" not in str(caught.value)


def test_parametric_storage_urls_are_substituted(tmp_path: Path) -> None:
    from computeops_grid.jobs.loader import expand

    spec = validate_spec({
        **BASE, "parameters": {"run": [1, 2]},
        "inputs": ["root://se//store/run${run}.root"], "outputs": [{"path": "h.root", "to": "s3://b/run${run}/"}],
    })  # fmt: skip
    jobs = expand(spec)
    assert [(j.spec.stage_in[0].name, j.spec.stage_out[0].to) for j in jobs] == [
        ("run1.root", "s3://b/run1/"),
        ("run2.root", "s3://b/run2/"),
    ]


def test_a_backend_that_ships_no_mover_refuses_before_storing(cli: Cli, tmp_path: Path) -> None:
    """The test plugin backend (tests/plugins, `spool`) ships the wrapper alone."""
    text = (cli.home / "config.yaml").read_text()
    (cli.home / "config.yaml").write_text(text + f"  spool:\n    spool: {tmp_path / 'spool'}\n")
    path = tmp_path / "j.yaml"
    path.write_text(json.dumps(JOB))
    result = cli("submit", str(path), "--backend", "spool")
    assert result.code == ExitCode.INVALID_INPUT, result.stderr
    assert "inputs: names storage URLs, which the spool backend" in " ".join(result.stderr.split())
    assert cli("list", "--json").json() == []
