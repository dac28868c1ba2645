"""``cops-grid export``: jobs as a Workflow Run RO-Crate (Process Run Crate profile, 0.5).

One crate for the jobs asked for. Per job (``<job id>/`` in the crate):

* a ``CreateAction`` (``#run-<id>``): the command line as its description, start and end time,
  ``actionStatus`` (completed or failed, with ``error``), ``exitCode``; ``object`` the job
  description (``job.json``), ``result`` the output files (each with its ``sha256`` and size) and
  the wrapper's report (``cops-report.json``);
* ``instrument``: the payload command as a ``SoftwareApplication`` whose ``softwareRequirements``
  is the container runtime that ran it (name and version);
* ``containerImage``: a ``ContainerImage`` (workflow-run terms) with the registry, name, tag and
  ``sha256`` digest that ran; ``location``: the node (host name, OS, kernel, CPU, GPUs);
* ``agent``: the person who submitted it (the local user name).

The root dataset ``conformsTo`` the profile and ``mentions`` every action. Made with the
``rocrate`` library (the ``crate`` extra).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import shlex
from pathlib import Path
from typing import Any

from computeops_grid import extras
from computeops_grid.errors import UsageError
from computeops_grid.images.errors import ImageError
from computeops_grid.images.reference import parse_ref
from computeops_grid.jobs.state import JobState
from computeops_grid.logic import follow, provenance
from computeops_grid.logic.session import Session

PROFILE = "https://w3id.org/ro/wfrun/process/0.5"
WFRUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
WFRUN = "https://w3id.org/ro/terms/workflow-run#"
STATUS = {
    JobState.COMPLETED: "http://schema.org/CompletedActionStatus",
    JobState.FAILED: "http://schema.org/FailedActionStatus",
    JobState.CANCELLED: "http://schema.org/FailedActionStatus",
}


def require_rocrate() -> type[Any]:
    """The ``rocrate`` library's ROCrate class, or :class:`~computeops_grid.errors.ExtraMissing`."""
    with extras.needed("RO-Crate export", "crate"):
        from rocrate.rocrate import ROCrate  # noqa: PLC0415 - optional extra, loaded when used
    return ROCrate  # type: ignore[no-any-return]


def export_crate(session: Session, ids: list[str], dest: Path) -> Path:
    """Write the crate of the ended jobs ``ids`` into ``dest`` (created; must be empty); returns ``dest``."""
    ROCrate = require_rocrate()
    if dest.exists() and any(dest.iterdir()):
        raise UsageError(f"{dest} is not empty", hint="export into a new directory")
    records = session.store.get_many(ids)
    for rec in records:
        if rec.state not in STATUS:
            raise UsageError(
                f"job {rec.id} is {rec.state}; only ended jobs can be exported",
                hint=f"`cops-grid wait`/`status {rec.id}` until it ends",
            )
    dest.mkdir(parents=True, exist_ok=True)
    crate = ROCrate(version="1.1")
    crate.metadata.extra_contexts.append(WFRUN_CONTEXT)
    crate.root_dataset["conformsTo"] = crate.add_jsonld(
        {"@id": PROFILE, "@type": "CreativeWork", "name": "Process Run Crate", "version": "0.5"}
    )
    crate.name = "cops-grid jobs " + ", ".join(r.id[:12] for r in records)
    crate.description = "What ran for these cops-grid jobs: image digest, runtime, node, outputs."
    agent = crate.add_jsonld({"@id": "#submitter", "@type": "Person", "name": _user()})
    actions = []
    for rec in records:
        record = provenance.show(session, rec.id)
        files = _job_files(session, rec.id, dest / rec.id, record)
        actions.append(_action(crate, record, files, agent))
    crate.root_dataset["mentions"] = actions
    crate.write(dest)
    return dest


def _job_files(session: Session, job_id: str, folder: Path, record: dict[str, Any]) -> dict[str, list[Path]]:
    """job.json, the wrapper's report and the job's output files, written under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.json").write_text(json.dumps(record["job"], indent=1, sort_keys=True) + "\n")
    inputs = [folder / "job.json"]
    outputs = []
    if record["report"] is not None:
        (folder / "cops-report.json").write_text(
            json.dumps(record["report"], indent=1, sort_keys=True) + "\n"
        )
        outputs.append(folder / "cops-report.json")
    if record["job"].get("outputs"):
        for path in follow.outputs(session, job_id, folder / "outputs"):
            if path.name == "cops-report.json":  # the stored one above is the report
                path.unlink()
            else:
                outputs.append(path)
    return {"inputs": inputs, "outputs": outputs}


def _add_file(crate: Any, path: Path, root: Path, description: str) -> Any:
    sha = hashlib.sha256()
    with path.open("rb") as handle:  # outputs may be large: hashed in blocks
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return crate.add_file(
        path,
        dest_path=path.relative_to(root).as_posix(),
        properties={
            "name": path.name,
            "description": description,
            "contentSize": str(path.stat().st_size),
            "sha256": sha.hexdigest(),
        },
    )


def _action(crate: Any, record: dict[str, Any], files: dict[str, list[Path]], agent: Any) -> Any:
    job_id = record["id"]
    root = next(iter(files["inputs"])).parent.parent
    runtime = record["runtime"]
    rt_name = runtime.get("name") or record["backend"]
    runtime_app = crate.add_jsonld(
        {
            "@id": f"#runtime-{job_id}",
            "@type": "SoftwareApplication",
            "name": rt_name,
            "softwareVersion": runtime.get("version") or "",
            "description": runtime.get("why") or f"the engine of the {record['backend']} backend",
        }
    )
    command = [str(c) for c in record["command"] or []]
    tool = crate.add_jsonld(
        {
            "@id": f"#tool-{job_id}",
            "@type": "SoftwareApplication",
            "name": command[0] if command else record["name"],
            "description": f"the payload of job {record['name']}, run in its container image",
            "softwareRequirements": {"@id": runtime_app.id},
            "softwareVersion": record["image"].get("digest") or record["image"].get("requested") or "",
        }
    )
    inputs = [_add_file(crate, p, root, "the job description (cops-grid job model)") for p in files["inputs"]]
    outputs = [_add_file(crate, p, root, _describe(p)) for p in files["outputs"]]
    props: dict[str, Any] = {
        "@type": "CreateAction",
        "name": f"cops-grid job {record['name']} ({job_id})",
        "description": shlex.join(command),
        "agent": {"@id": agent.id},
        "actionStatus": {"@id": STATUS[JobState(record["state"])]},
    }
    for key, value in (("startTime", record["started_at"]), ("endTime", record["ended_at"])):
        if value:
            props[key] = value
    if isinstance(record["exit_code"], int):
        props["exitCode"] = record["exit_code"]
    if record["state"] != JobState.COMPLETED.value:
        props["error"] = _error(record)
    image = _image(crate, record)
    if image is not None:
        props["containerImage"] = {"@id": image.id}
    node = _node(crate, record)
    if node is not None:
        props["location"] = {"@id": node.id}
    return crate.add_action(
        tool, identifier=f"#run-{job_id}", object=inputs, result=outputs, properties=props
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown user"


def _describe(path: Path) -> str:
    if path.name == "cops-report.json":
        return "the pilot wrapper's report: what ran, where, how it ended"
    return "an output file of the job"


def _error(record: dict[str, Any]) -> str:
    if record["signal"]:
        return f"killed by signal {record['signal']}"
    if record["wrapper_exit_reason"] not in (None, "payload"):
        return f"wrapper: {record['wrapper_exit_reason']} (exit code {record['exit_code']})"
    return f"job {record['state']} with exit code {record['exit_code']}"


def _image(crate: Any, record: dict[str, Any]) -> Any:
    image = record["image"]
    name = image.get("ran") or image.get("requested")
    if not name:
        return None
    props: dict[str, Any] = {"@type": "ContainerImage", "@id": f"#image-{record['id']}"}
    digest = image.get("digest")
    if isinstance(name, str) and name.endswith(".sif"):
        props.update(additionalType={"@id": WFRUN + "SIFImage"}, name=name)
    else:
        props["additionalType"] = {"@id": WFRUN + "DockerImage"}
        try:
            ref = parse_ref(str(name))
            props.update(registry=ref.registry, name=ref.repository)
            if ref.tag:
                props["tag"] = ref.tag
        except ImageError:
            props["name"] = str(name)
    if isinstance(digest, str) and digest.startswith("sha256:"):
        props["sha256"] = digest.removeprefix("sha256:")
        props["identifier"] = digest
    return crate.add_jsonld(props)


def _node(crate: Any, record: dict[str, Any]) -> Any:
    node = record["node"]
    if not isinstance(node, dict) or not node.get("hostname"):
        return None
    facts = [f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}" for key, value in
             sorted(node.items()) if key != "hostname" and value not in (None, "", [])]  # fmt: skip
    return crate.add_jsonld(
        {
            "@id": f"#node-{record['id']}",
            "@type": "Place",
            "name": node["hostname"],
            "description": "the worker node; " + "; ".join(facts),
        }
    )
