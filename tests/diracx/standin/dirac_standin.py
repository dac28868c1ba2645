"""A stand-in for the legacy DIRAC client commands (the DIRAC client cannot be installed here:
M2Crypto and gfal2 fail to build). It replays the documented interface and output of
``dirac-wms-job-submit/-status/-get-output/-kill/-get-jdl`` and parses JDLs with DIRAC's own
ClassAd parser (DIRACCommon). ``standin-run ID`` plays the worker node: it runs the job's
Executable and Arguments (the real pilot wrapper) and stores the output sandbox.
State lives in $DIRAC_STANDIN_STATE (one JSON file per job)."""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd

STATE = Path(os.environ.get("DIRAC_STANDIN_STATE", "/nonexistent"))


def _job(job_id: str) -> dict[str, object]:
    return json.loads((STATE / f"{job_id}.json").read_text())


def _save(job_id: str, data: dict[str, object]) -> None:
    (STATE / f"{job_id}.json").write_text(json.dumps(data))


def _ids() -> list[str]:
    return sorted((p.stem for p in STATE.glob("*.json")), key=int)


def submit(args: list[str]) -> int:
    for path in args:
        ad = ClassAd(Path(path).read_text())
        if not ad.isOK():
            print(f"ERROR: Invalid JDL in {path}")
            return 1
        job_id = str(len(_ids()) + 1)
        sandbox = ad.getListFromExpression("InputSandbox")
        attrs = {a: ad.getAttributeString(a) for a in ad.getAttributes()}
        outputs = ad.getListFromExpression("OutputSandbox")
        _save(job_id, {
            "jdl": attrs, "sandbox": sandbox, "outputs": outputs, "Status": "Received",
            "MinorStatus": "Job accepted", "ApplicationStatus": "Unknown",
            "JobGroup": attrs.get("JobGroup", ""),
        })  # fmt: skip
        print(f"JobID = {job_id}")
    return 0


def status(args: list[str]) -> int:
    ids = args
    if args[:1] == ["-g"]:
        ids = [i for i in _ids() if _job(i)["JobGroup"] == args[1]]
    for job_id in ids:
        job = _job(job_id)
        print(f"JobID={job_id} Status={job['Status']}; MinorStatus={job['MinorStatus']}; "
              f"ApplicationStatus={job['ApplicationStatus']}; Site=ANY;")  # fmt: skip
    return 0


def get_jdl(args: list[str]) -> int:
    print(repr(_job(args[0])["jdl"]))
    return 0


def kill(args: list[str]) -> int:
    for job_id in args:
        job = _job(job_id)
        if job["Status"] not in ("Done", "Failed"):
            job.update(Status="Killed", MinorStatus="Marked for termination")
            _save(job_id, job)
    return 0


def get_output(args: list[str]) -> int:
    dest, ids = (Path(args[1]), args[2:]) if args[:1] == ["-D"] else (Path.cwd(), args)
    for job_id in ids:
        out = STATE / job_id / "out"
        if not out.is_dir():
            print(f"ERROR: No output sandbox registered for job {job_id}")
            return 1
        shutil.copytree(out, dest / job_id, dirs_exist_ok=True)
        print(f"Job output sandbox retrieved in {dest / job_id}/")
    return 0


def run(args: list[str]) -> int:
    job_id = args[0]
    job = _job(job_id)
    attrs: dict[str, str] = job["jdl"]  # type: ignore[assignment]
    work = STATE / job_id / "work"
    work.mkdir(parents=True)
    for item in job["sandbox"]:  # type: ignore[attr-defined]
        shutil.copy(item, work)
    exe = attrs["Executable"]
    argv = [sys.executable, exe, *shlex.split(attrs.get("Arguments", ""))]
    with (work / attrs["StdOutput"]).open("wb") as out, (work / attrs["StdError"]).open("wb") as err:
        code = subprocess.run(argv, cwd=work, stdout=out, stderr=err, check=False).returncode
    out_dir = STATE / job_id / "out"
    out_dir.mkdir()
    for pattern in job["outputs"]:  # type: ignore[attr-defined]
        for match in glob.glob(str(work / pattern)):
            shutil.copy(match, out_dir)
    job.update(Status="Done" if code == 0 else "Failed", MinorStatus="Execution Complete",
               ApplicationStatus=f"exit code {code}")  # fmt: skip
    _save(job_id, job)
    return 0


COMMANDS = {
    "dirac-wms-job-submit": submit,
    "dirac-wms-job-status": status,
    "dirac-wms-job-get-jdl": get_jdl,
    "dirac-wms-job-kill": kill,
    "dirac-wms-job-get-output": get_output,
    "standin-run": run,
}


def main(command: str, args: list[str]) -> None:
    sys.exit(COMMANDS[command](args))
