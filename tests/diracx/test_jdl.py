"""JDL generation, checked with DIRAC's own parser (DIRACCommon: the code the server runs)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd
from DIRACCommon.WorkloadManagementSystem.Utilities.ParametricJob import (
    generateParametricJobs,
    getParameterVectorLength,
)

from computeops_grid import worker
from computeops_grid.backends.dirac import jdl
from computeops_grid.errors import JobFileError
from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord

PFN = "SB:SandboxSE|/S3/sandboxes/testvo/testvo_user/alice/sha256:abc.tar.zst"


def record(i: int = 0, **spec: object) -> JobRecord:
    fields: dict[str, object] = {
        "name": "hello", "image": "docker://busybox:latest", "command": "sh",
        "arguments": ["-c", "echo hi > out.txt && exit 0"], "outputs": ["out.txt", "*.log"],
    }  # fmt: skip
    fields.update(spec)
    return JobRecord(id=f"abcdef{i:06d}", spec=JobSpec.model_validate(fields), backend="diracx")


def test_single_jdl_parses_and_passes_dirac_checks() -> None:
    job = record(resources={"cores": 8, "gpus": 1, "memory": "16GiB", "walltime": "02:00:00"})
    opts = jdl.JdlOptions(site=["LCG.CERN.cern"], banned_sites=["LCG.Bad.xx"], priority=3, job_group="grp")
    text = jdl.single_jdl(job, [PFN], opts)
    ad = ClassAd(text)
    assert ad.isOK()
    assert jdl.offline_check(text) is None  # DIRAC's checkAndAddOwner accepts it
    assert ad.getAttributeString("JobName") == "hello.abcdef000000"
    assert ad.getAttributeString("Executable") == "cops_pilot.py"
    args = ad.getAttributeString("Arguments")
    assert args.startswith("--image docker://busybox:latest --report cops-report.json --workdir . --gpu")
    assert args.endswith("-- sh -c 'echo hi > out.txt && exit 0'")
    assert ad.getListFromExpression("InputSandbox") == [PFN]
    assert ad.getListFromExpression("OutputSandbox") == [
        "std.out",
        "std.err",
        "cops-report.json",
        "out.txt",
        "*.log",
    ]
    assert ad.getAttributeInt("CPUTime") == 8 * 7200
    assert ad.getAttributeInt("NumberOfProcessors") == 8
    assert ad.getAttributeInt("MinRAM") == 16 * 1024
    assert ad.getAttributeInt("NumberOfGPUs") == 1
    assert ad.getListFromExpression("Tags") == ["8Processors", "GPU", "MultiProcessor"]
    assert ad.getListFromExpression("Site") == ["LCG.CERN.cern"]
    assert ad.getListFromExpression("BannedSites") == ["LCG.Bad.xx"]
    assert ad.getAttributeInt("Priority") == 3


def test_backend_options_override_settings_and_unknown_ones_are_named() -> None:
    job = record(backend_options={"site": "LCG.Other.org", "platform": "EL9"})
    ad = ClassAd(jdl.single_jdl(job, [PFN], jdl.JdlOptions(site=["LCG.CERN.cern"])))
    assert ad.getListFromExpression("Site") == ["LCG.Other.org"]
    assert ad.getAttributeString("Platform") == "EL9"
    with pytest.raises(JobFileError) as err:
        jdl.single_jdl(record(backend_options={"sitez": "x"}), [PFN], jdl.JdlOptions())
    assert err.value.field == "backend_options.sitez"


@pytest.mark.parametrize("arg", ["a;b", 'say "hi"', "x[0]"])
def test_arguments_dirac_cannot_carry_go_through_the_launcher(arg: str) -> None:
    job = record(arguments=["-c", arg])
    ad = ClassAd(jdl.single_jdl(job, [PFN], jdl.JdlOptions()))
    assert ad.isOK()
    assert ad.getAttributeString("Executable") == "cops_dirac_launch.py"
    word = ad.getAttributeString("Arguments")
    assert word.startswith("b64:")
    decoded = json.loads(base64.urlsafe_b64decode(word[4:]))
    assert decoded == jdl.arguments(job, jdl.JdlOptions())
    assert decoded[-2:] == ["-c", arg]


def test_launcher_execs_the_wrapper_with_the_decoded_arguments(tmp_path: Path) -> None:
    """The real launcher file, with a stand-in wrapper next to it that echoes its argv."""
    shutil.copy(worker.path(worker.DIRAC_LAUNCHER), tmp_path / jdl.LAUNCHER_FILE)
    (tmp_path / "cops_pilot.py").write_text("import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    args = ["--image", "x", "--", "sh", "-c", 'echo "a;b" [c]']
    _, (word,) = jdl.command_line(args)
    out = subprocess.run(
        [sys.executable, jdl.LAUNCHER_FILE, word], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == args
    bad = subprocess.run(
        [sys.executable, jdl.LAUNCHER_FILE, "nope"], cwd=tmp_path, capture_output=True, check=False
    )
    assert bad.returncode == 240


def test_outputs_dirac_cannot_carry_are_refused_naming_the_attribute() -> None:
    with pytest.raises(JobFileError) as err:
        jdl.single_jdl(record(outputs=["a,b.txt"]), [PFN], jdl.JdlOptions())
    assert "JDL attribute OutputSandbox" in err.value.message
    assert "','" in err.value.message
    assert err.value.field == "outputs"


def test_offline_check_names_the_bad_attribute() -> None:
    assert jdl.offline_check('[Executable = "x"; CPUTime = "lots";]') == "CPUTime must be a number"
    assert "JobType" in str(jdl.offline_check('[Executable = "x"; JobType = "Bogus";]'))
    msg = jdl.diagnose('[\n    Executable = "x";\n    Platform = "EL9";\n]', "JDL syntax error")
    assert "Platform" in msg


def test_parametric_jdl_of_ten_expands_with_diracs_own_code() -> None:
    jobs = [record(i, arguments=["-c", "echo", f"value{i}"], environment={"X": str(i)}) for i in range(10)]
    text = jdl.parametric_jdl(jobs, [PFN], jdl.JdlOptions())
    assert text is not None
    ad = ClassAd(text)
    assert getParameterVectorLength(ad)["Value"] == 10
    expanded = [ClassAd(j) for j in generateParametricJobs(ad)["Value"]]
    singles = [ClassAd(jdl.single_jdl(j, [PFN], jdl.JdlOptions())) for j in jobs]
    for exp, single in zip(expanded, singles):
        assert exp.getAttributeString("JobName") == single.getAttributeString("JobName")
        assert exp.getAttributeString("Arguments") == single.getAttributeString("Arguments")


def test_parametric_falls_back_when_dirac_cannot_express_it() -> None:
    with_spaces = [record(i, arguments=["-c", f"echo value {i}"]) for i in range(3)]
    assert jdl.parametric_jdl(with_spaces, [PFN], jdl.JdlOptions()) is None  # value with a space
    percent = [record(i, arguments=["%n", str(i)]) for i in range(3)]
    assert jdl.parametric_jdl(percent, [PFN], jdl.JdlOptions()) is None  # DIRAC would replace %n
    outputs = [record(i, outputs=[f"out{i}.txt"]) for i in range(3)]
    assert jdl.parametric_jdl(outputs, [PFN], jdl.JdlOptions()) is None  # differs beyond arguments
