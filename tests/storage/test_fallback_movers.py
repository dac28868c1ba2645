"""The wrapper's fallback movers against the real servers: gfal-copy (gfal2's xrootd plugin) on a
node without xrdcp, with the same checks and failure kinds; Python's own HTTPS without curl.

The mover module is driven directly with its tool table narrowed to gfal-copy: hiding xrdcp
from a whole job's PATH would hide the container runtimes with it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from computeops_grid import worker
from tests.services.xrootd import GRID_CERTS, XRootD, adler32

GFAL_PYTHON = "/usr/bin/python3"  # gfal-copy runs the first python that imports gfal2 (not pyenv's)


@pytest.fixture(scope="module")
def transfer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cops_transfer_gfal", worker.path(worker.TRANSFER))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stager(transfer: ModuleType, workdir: Path) -> Any:
    gfal = shutil.which("gfal-copy")
    if gfal is None:
        pytest.skip("gfal2-util-scripts is not installed (etc/deps/apt-grid.txt)")
    env = {**os.environ, "GFAL_PYTHONBIN": GFAL_PYTHON}
    node = transfer.Stager(str(workdir), env, retries=1, backoff=0.0)
    node.tools = dict.fromkeys(node.tools) | {"gfal-copy": gfal}  # a node without xrdcp
    return node


def test_gfal_copy_moves_and_checks_like_xrdcp(transfer: ModuleType, xrootd: XRootD, tmp_path: Path) -> None:
    node = stager(transfer, tmp_path)
    source = xrootd.put("/store/data/gfal/in.txt", b"via gfal\n")
    entries, failure = node.stage_in([("in.txt", source)])
    assert failure is None, failure and failure.message
    assert entries[0]["mover"] == "gfal-copy"
    assert (tmp_path / "in.txt").read_bytes() == b"via gfal\n"

    (tmp_path / "hist-1.root").write_bytes(b"histogram\n")
    (tmp_path / "hist-2.root").write_bytes(b"histogram\n")
    entries, failure = node.stage_out([
        ("hist-1.root", f"{xrootd.url}//store/user/gfal/"),
        ("hist-2.root", f"{xrootd.url}//store/liar/gfal/"),
    ])  # fmt: skip
    good, liar = entries
    assert (good["status"], good["checksum"]["local"]) == ("ok", adler32(b"histogram\n"))
    assert xrootd.path("/store/user/gfal/hist-1.root").read_bytes() == b"histogram\n"
    assert (liar["status"], liar["kind"]) == ("failed", "mismatch")
    assert failure is not None and failure.url == f"{xrootd.url}//store/liar/gfal/hist-2.root"

    cases = {
        f"{xrootd.url}//store/readonly/gfal/": "refused",
        "root://127.0.0.1:1//store/user/gfal/": "unreachable",
    }
    for url, kind in cases.items():
        _entries, failure = node.stage_out([("hist-1.root", url)])
        assert failure is not None and failure.kind == kind, (url, failure and failure.message)
    _entries, failure = node.stage_in([("x", f"{xrootd.url}//store/data/gfal/nothere")])
    assert failure is not None and failure.kind == "missing"


def test_https_input_without_curl_uses_the_standard_library(
    transfer: ModuleType, xrootd: XRootD, tmp_path: Path
) -> None:
    """A node without curl still reads https:// and davs:// inputs (Python's own TLS, the node's CAs)."""
    if xrootd.https_port is None:
        pytest.skip("no test CA here (arcctl test-ca): no HTTPS server")
    node = transfer.Stager(str(tmp_path), {**os.environ, "X509_CERT_DIR": str(GRID_CERTS)}, retries=1)
    node.tools = dict.fromkeys(node.tools)  # no tool at all
    source = xrootd.put("/store/data/py/in.txt", b"no curl\n").replace(xrootd.url, xrootd.davs)
    entries, failure = node.stage_in([("in.txt", source), ("gone.txt", source.replace("in.txt", "gone"))])
    assert entries[0]["mover"] == "python-https"
    assert (tmp_path / "in.txt").read_bytes() == b"no curl\n"
    assert failure is not None
    assert failure.kind == "missing" and failure.url.endswith("/gone")


def test_a_bearer_token_never_stays_in_the_sandbox_nor_on_a_command_line(
    transfer: ModuleType, xrootd: XRootD, tmp_path: Path
) -> None:
    if xrootd.https_port is None or shutil.which("curl") is None:
        pytest.skip("no HTTPS server or no curl")
    token = "eyJ-not-a-real-token"
    env = {**os.environ, "X509_CERT_DIR": str(GRID_CERTS), "BEARER_TOKEN": token}
    probe, job = tmp_path / "probe", tmp_path / "job"
    probe.mkdir()
    job.mkdir()
    argv = transfer.curl_auth(env, str(probe))
    assert token not in " ".join(argv)  # curl reads it from a 0600 header file
    header = Path(argv[argv.index("-H") + 1].lstrip("@"))
    assert header.stat().st_mode & 0o777 == 0o600
    assert header.read_text() == f"Authorization: Bearer {token}\n"
    source = xrootd.put("/store/data/tok/in.txt", b"with a token\n").replace(xrootd.url, xrootd.davs)
    _entries, failure = transfer.Stager(str(job), env, retries=1).stage_in([("in.txt", source)])
    assert failure is None, failure and failure.message
    assert [p.name for p in job.iterdir()] == ["in.txt"]  # the header file went with the request
