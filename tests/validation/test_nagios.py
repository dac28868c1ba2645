"""The probes under a real Nagios Core 4: the states and perfdata it records are the probes' own."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.nagios import NAGIOS, NagiosServer
from tests.validation.probes import PROBES

PYTHON = "/usr/bin/python3"  # the system interpreter: the nagios user cannot reach the test's venv
pytestmark = [
    pytest.mark.service,
    pytest.mark.skipif(
        not Path(NAGIOS).exists(), reason="nagios4-core is not installed (etc/deps/apt-validation.txt)"
    ),
]


@pytest.fixture(scope="module")
def nagios_run() -> Iterator[tuple[Path, dict[str, list[str]], dict[str, object]]]:
    workdir = Path(tempfile.mkdtemp(prefix="cops-nagios-"))
    workdir.chmod(0o755)
    probes = workdir / "probes"
    shutil.copytree(PROBES, probes)  # as deployed on a Nagios/ETF host: a copy of the probes folder
    (workdir / "cvmfs" / "unpacked.cern.ch").mkdir(parents=True)
    (workdir / "cvmfs" / "unpacked.cern.ch" / "ok").write_text("readable\n")
    checks = {
        "cpu_cores": [PYTHON, f"{probes}/check_cpu.py", "--warn-cores", "64"],
        "memory": [PYTHON, f"{probes}/check_memory.py", "--warn-per-core", "0.5", "--crit-per-core", "0.25"],
        "cvmfs_missing": [PYTHON, f"{probes}/check_cvmfs.py", "--cvmfs-root", f"{workdir}/cvmfs",
                          "--repo", "unpacked.cern.ch", "--repo", "atlas.cern.ch", "--no-client"],
        "scratch_missing": [PYTHON, f"{probes}/check_scratch.py", "--path", f"{workdir}/nope"],
        "gpu": [PYTHON, f"{probes}/check_gpu.py"],
        "userns": [PYTHON, f"{probes}/check_userns.py"],
    }  # fmt: skip
    server = NagiosServer.start(workdir, checks)
    try:
        found = server.results(list(checks))
    except BaseException:
        server.stop()
        raise
    try:
        yield workdir, checks, dict(found)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _direct(argv: list[str]) -> tuple[int, str, str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    status, _sep, perf = proc.stdout.splitlines()[0].partition("|")
    return proc.returncode, status.strip(), perf.strip()


def _labels(perf: str) -> list[str]:
    return [item.split("=")[0] for item in perf.split()]


def test_nagios_records_the_probes_states(
    nagios_run: tuple[Path, dict[str, list[str]], dict[str, object]],
) -> None:
    _workdir, checks, found = nagios_run
    expected = {"cpu_cores": 1, "memory": 0, "cvmfs_missing": 2, "scratch_missing": 3, "gpu": 0, "userns": 0}
    states = {name: found[name].state for name in checks}  # type: ignore[attr-defined]
    if not Path("/dev/nvidia0").exists():
        assert states == expected
    for name, argv in checks.items():
        code, _status, _perf = _direct(argv)
        assert states[name] == code, name


def test_nagios_output_and_perfdata_match(
    nagios_run: tuple[Path, dict[str, list[str]], dict[str, object]],
) -> None:
    _workdir, checks, found = nagios_run
    for name in ("cpu_cores", "memory", "cvmfs_missing", "scratch_missing"):
        _code, status, perf = _direct(checks[name])
        recorded = found[name]
        assert recorded.output == status, name  # type: ignore[attr-defined]
        if name in ("cpu_cores", "memory"):
            assert recorded.perfdata == perf, name  # type: ignore[attr-defined]
    userns = found["userns"]
    _code, _status, perf = _direct(checks["userns"])
    assert _labels(userns.perfdata) == _labels(perf) == ["max_user_namespaces", "unshare_time"]  # type: ignore[attr-defined]
    assert ";64;1;0" in found["cpu_cores"].perfdata  # type: ignore[attr-defined]
    assert "unpacked.cern.ch: read" in found["cvmfs_missing"].long_output  # type: ignore[attr-defined]
