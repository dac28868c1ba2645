"""Grid storage on the local backend, end to end: real CLI, wrapper, XRootD and S3 servers.

A job reads its input from XRootD and writes two outputs, one to XRootD and one to S3; the
wrapper moves the bytes (xrdcp/xrdfs, its own SigV4 client) and checks the checksum each
storage reports. The bad cases are real server behaviour: a checksum the server reports
wrong (its checksum program), a port nobody listens on, a read-only export, a missing file.
"""

from __future__ import annotations

import json
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from computeops_grid import worker
from computeops_grid.jobs import exit_codes
from tests.conftest import Cli
from tests.services.xrootd import GRID_CERTS, S3, XRootD, adler32
from tests.storage.conftest import BUCKET, closed_port

BIG = "dd if=/dev/urandom of=hist-1.root bs=1024 count=200"  # more than /store/full's 64 KiB disk
PAYLOAD = "cat in.txt > hist-1.root; echo second >> hist-1.root; echo summary of $JOB > summary.txt"


def job(name: str, inputs: list[Any], outputs: list[Any], script: str = PAYLOAD) -> dict[str, Any]:
    return {
        "name": name, "image": "docker://busybox:latest", "command": "sh",
        "arguments": ["-c", script], "environment": {"JOB": name}, "inputs": inputs, "outputs": outputs,
    }  # fmt: skip


def submit(cli: Cli, path: Path, jobs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    path.write_text(json.dumps({"jobs": jobs}))
    result = cli("submit", str(path), "--wait", timeout=180)
    assert result.code in (0, 8), result.stderr
    rows = cli("list", "--json").json()
    assert isinstance(rows, list)
    return {row["name"]: row for row in rows}


def fetched(cli: Cli, job_id: str, dest: Path) -> dict[str, Any]:
    result = cli("get", job_id, "-o", str(dest), "--json")
    assert result.code == 0, result.stderr
    report: dict[str, Any] = json.loads((dest / "cops-report.json").read_text())
    return report


def test_job_reads_from_xrootd_and_writes_to_xrootd_and_s3_checked(
    cli: Cli, tmp_path: Path, xrootd: XRootD, storage_env: S3
) -> None:
    source = xrootd.put("/store/data/good/in.txt", b"event data\n")
    storage_env.client().put_object(Bucket=BUCKET, Key="conditions/calib.db", Body=b"calibration\n")
    calib = f"s3://{BUCKET}/conditions/calib.db"
    rows = submit(cli, tmp_path / "j.yaml", [job("good", [source, calib], [
        {"path": "hist-*.root", "to": f"{xrootd.url}//store/user/me/run1/"},
        {"path": "summary.txt", "to": f"s3://{BUCKET}/run1/summary.txt"},
    ], PAYLOAD + "; cat calib.db >> summary.txt")])  # fmt: skip
    row = rows["good"]
    assert (row["state"], row["exit_code"]) == ("completed", 0)
    hist = xrootd.path("/store/user/me/run1/hist-1.root").read_bytes()
    assert hist == b"event data\nsecond\n"
    summary = storage_env.client().get_object(Bucket=BUCKET, Key="run1/summary.txt")["Body"].read()
    assert summary == b"summary of good\ncalibration\n"  # the S3 input was there for the payload
    report = fetched(cli, row["id"], tmp_path / "out")
    staged_in, staged_calib = report["stage_in"]
    assert (staged_calib["name"], staged_calib["mover"], staged_calib["size"]) == (
        "calib.db",
        "python-s3",
        12,
    )
    assert (tmp_path / "out" / "cops-report.json").exists()
    assert staged_in | {"seconds": 0} == {
        "url": source, "name": "in.txt", "mover": "xrdcp", "status": "ok", "size": 11, "attempts": 1,
        "checksum": {"adler32": adler32(b"event data\n")}, "seconds": 0,
    }  # fmt: skip
    outs = {entry["path"]: entry for entry in report["stage_out"]}
    assert outs["hist-1.root"]["checksum"] == {
        "algorithm": "adler32",
        "local": adler32(hist),
        "remote": adler32(hist),
    }
    assert outs["hist-1.root"]["url"] == f"{xrootd.url}//store/user/me/run1/hist-1.root"
    assert outs["summary.txt"]["mover"] == "python-s3"
    assert outs["summary.txt"]["checksum"]["remote"] == outs["summary.txt"]["checksum"]["local"]
    assert all(entry["verified"] for entry in outs.values())
    assert report["storage"]["tools"]["xrdcp"]  # the report says which tools the node has
    assert (tmp_path / "out" / "hist-1.root").read_bytes() == hist  # and the sandbox keeps them
    shown = cli("show", row["id"], "--json")  # the job's provenance carries the checked transfers
    assert shown.code == 0, shown.stderr
    provenance = shown.json()
    assert isinstance(provenance, dict)
    assert provenance["report"]["stage_out"] == report["stage_out"]


def test_bad_storage_cases_fail_with_their_code_and_keep_the_output(
    cli: Cli, tmp_path: Path, xrootd: XRootD, storage_env: S3
) -> None:
    source = xrootd.put("/store/data/bad/in.txt", b"x\n")
    down = f"root://127.0.0.1:{closed_port()}//store/user/"
    missing = f"{xrootd.url}//store/data/bad/nothere.root"
    rows = submit(cli, tmp_path / "j.yaml", [
        job("mismatch", [source], [{"path": "hist-*.root", "to": f"{xrootd.url}//store/liar/"}]),
        job("unreachable", [source], [{"path": "hist-*.root", "to": down}]),
        job("refused", [source], [{"path": "hist-*.root", "to": f"{xrootd.url}//store/readonly/"}]),
        job("nobucket", [source], [{"path": "summary.txt", "to": "s3://no-such-bucket/s.txt"}]),
        job("missing-input", [missing], ["summary.txt"]),
        job("full", [], [{"path": "hist-*.root", "to": f"{xrootd.url}//store/full/"}], BIG),
    ])  # fmt: skip
    out_code, in_code = exit_codes.code("stage-out-failed"), exit_codes.code("stage-in-failed")
    expected = {
        "mismatch": (out_code, "mismatch", f"{xrootd.url}//store/liar/hist-1.root"),
        "unreachable": (out_code, "unreachable", f"{down}hist-1.root"),
        "refused": (out_code, "refused", f"{xrootd.url}//store/readonly/hist-1.root"),
        "nobucket": (out_code, "missing", "s3://no-such-bucket/s.txt"),
        "missing-input": (in_code, "missing", missing),
        "full": (out_code, "mismatch", f"{xrootd.url}//store/full/hist-1.root"),
    }
    for name, (code, kind, url) in expected.items():
        row = rows[name]
        assert (row["state"], row["exit_code"]) == ("failed", code), (name, row)
        assert url in row["message"] and f"({kind})" in row["message"], (name, row["message"])
        report = fetched(cli, row["id"], tmp_path / name)
        if name == "missing-input":
            assert "payload was not started" in row["message"]
            assert report["runtime"] is None and not (tmp_path / name / "summary.txt").exists()
            continue
        produced = "summary.txt" if name == "nobucket" else "hist-1.root"
        assert produced in row["message"]
        assert report["payload_exit_code"] == 0  # the payload's own code is kept
        [entry] = report["stage_out"]
        assert (entry["status"], entry["kind"], entry["url"]) == ("failed", kind, url)
        assert (tmp_path / name / produced).is_file()  # nothing is lost: `get` returns it
    assert rows["unreachable"]["exit_code"] == out_code
    liar = fetched(cli, rows["mismatch"]["id"], tmp_path / "again")["stage_out"][0]
    assert liar["attempts"] == 2  # a mismatch is retried, bounded
    assert "storage reports 00000001" in liar["error"]
    # XRootD 5.5.3 on a full disk: xrdcp exits 0 and the server keeps the first 64 KiB; the size
    # and checksum checks are what catch it
    assert "the storage holds 65536 of the 204800 bytes sent" in rows["full"]["message"]
    assert zlib.adler32(b"") == 1  # (the liar's value is adler32 of nothing: a plausible lie)


def test_the_mover_is_python36_stdlib() -> None:
    proc = subprocess.run(
        ["vermin", "-t=3.6-", "--no-tips", "--violations", str(worker.path(worker.TRANSFER))],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_webdav_over_https_in_and_out_checked_and_a_refusal(
    cli: Cli, tmp_path: Path, xrootd: XRootD, storage_env: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WebDAV is XRootD's own HTTP plugin (XrdHttp) over TLS with the test CA's host
    certificate; curl moves the bytes and HEAD with ``Want-Digest: adler32`` gives the checksum."""
    if xrootd.https_port is None:
        pytest.skip("no test CA here (arcctl test-ca): no HTTPS for the WebDAV server")
    monkeypatch.setenv("X509_CERT_DIR", str(GRID_CERTS))  # the node's CA directory, as on the grid
    source = xrootd.put("/store/data/dav/in.txt", b"over https\n")
    dav_in = source.replace(xrootd.url, xrootd.davs)
    rows = submit(cli, tmp_path / "j.yaml", [
        job("dav", [{"url": dav_in, "name": "in.txt"}],
            [{"path": "hist-*.root", "to": f"{xrootd.davs}//store/user/dav/"}]),
        job("dav-refused", [dav_in], [{"path": "hist-*.root", "to": f"{xrootd.davs}//store/readonly/"}]),
    ])  # fmt: skip
    assert (rows["dav"]["state"], rows["dav"]["exit_code"]) == ("completed", 0), rows["dav"]
    hist = xrootd.path("/store/user/dav/hist-1.root").read_bytes()
    assert hist == b"over https\nsecond\n"
    report = fetched(cli, rows["dav"]["id"], tmp_path / "dav")
    assert report["stage_in"][0]["mover"] == "curl"
    [entry] = report["stage_out"]
    assert entry["checksum"] == {"algorithm": "adler32", "local": adler32(hist), "remote": adler32(hist)}
    refused = rows["dav-refused"]
    assert refused["exit_code"] == exit_codes.code("stage-out-failed")
    assert f"{xrootd.davs}//store/readonly/hist-1.root (refused)" in refused["message"], refused["message"]
    fetched(cli, refused["id"], tmp_path / "refused")
    assert (tmp_path / "refused" / "hist-1.root").is_file()
