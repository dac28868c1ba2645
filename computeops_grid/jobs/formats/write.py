"""``cops-grid convert``: job specs out as YAML, or as the description a backend would send.

The native texts come from the backends' own writers (the ones ``submit --dry-run`` prints):
DIRAC's JDL (``backends/dirac/jdl.py``), ARC's xRSL and ADL (``backends/arc/desc.py``) and the
HTCondor-CE submit file (``backends/htcondor_ce/submit.py``), with the default settings (the
wrapper ``cops_pilot.py`` next to the description, no image repository). Ids are numbered from
0 so that a conversion is reproducible; what the target does not carry is returned as notes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml

from computeops_grid import extras
from computeops_grid.backends.arc import desc
from computeops_grid.backends.common.payload import PILOT_FILE
from computeops_grid.backends.htcondor_ce import submit as condor_submit
from computeops_grid.jobs.loader import expand
from computeops_grid.jobs.model import JobSpec, Resources
from computeops_grid.jobs.record import JobRecord

TARGETS = {"yaml": None, "jdl": "diracx", "xrsl": "arc", "adl": "arc", "sub": "htcondor-ce"}
_ARC_OPTIONS = frozenset({"queue", "rte"})
_GLOB = re.compile(r"[*?\[]")


def _size(value: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value % factor == 0:
            return f"{value // factor}{unit}"
    return f"{value}B"


def spec_data(spec: JobSpec) -> dict[str, Any]:
    """A spec as a user would write it: defaults left out, sizes in GiB/MiB."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    resources = data.get("resources", {})
    for key in ("memory", "walltime"):  # serialized fields: pydantic keeps them even at their default
        if key in resources and getattr(spec.resources, key) == getattr(Resources(), key):
            del resources[key]
    if "memory" in resources:
        resources["memory"] = _size(spec.resources.memory)
    if "resources" in data and not resources:
        del data["resources"]
    return data


def to_yaml(specs: Sequence[JobSpec], header: Sequence[str] = ()) -> str:
    docs = [spec_data(s) for s in specs]
    body: Any = docs[0] if len(docs) == 1 else {"jobs": docs}
    text = yaml.safe_dump(body, sort_keys=False, default_flow_style=None, allow_unicode=True, width=100)
    return "".join(f"# {line}\n".replace("# \n", "#\n") for line in header) + text


def _allowed(target: str) -> frozenset[str]:
    """The backend options the target's backend understands."""
    if target != "jdl":
        return _ARC_OPTIONS if target in ("xrsl", "adl") else frozenset()
    with extras.needed("converting to JDL", "diracx"):
        from computeops_grid.backends.dirac import jdl  # noqa: PLC0415 - DIRACCommon only here
    return jdl.OPTION_KEYS


def _records(specs: Sequence[JobSpec], target: str, notes: list[str], names_as_ids: bool) -> list[JobRecord]:
    records: list[JobRecord] = []
    allowed = _allowed(target)
    for number, spec in enumerate(specs):
        if spec.tags:
            notes.append(f"tags: {target} has no place for them")
        if spec.backend:
            notes.append(f"backend: {spec.backend!r} is where cops-grid submits, not part of the description")
        for job in expand(spec):
            options = dict(job.spec.backend_options)
            for key in sorted(set(options) - allowed):
                notes.append(f"backend_options.{key}: not understood by {TARGETS[target]} backends")
            options = {k: v for k, v in options.items() if k in allowed}
            concrete = job.spec.model_copy(update={"backend_options": options, "tags": [], "backend": None})
            records.append(
                JobRecord(
                    id=f"{len(records):012x}", spec=concrete, backend=str(TARGETS[target]), index=job.index,
                    bulk_id=f"{number:012x}" if job.params else None, params=job.params,
                )
            )  # fmt: skip
    if names_as_ids and len({r.spec.name for r in records}) == len(records):
        for rec in records:
            rec.id = rec.spec.name
    return records


def _groups(records: Sequence[JobRecord]) -> list[list[JobRecord]]:
    groups: dict[str, list[JobRecord]] = {}
    for rec in records:
        groups.setdefault(rec.bulk_id or rec.id, []).append(rec)
    return list(groups.values())


def _jdl(records: Sequence[JobRecord], notes: list[str]) -> str:
    with extras.needed("converting to JDL", "diracx"):
        from computeops_grid.backends.dirac import jdl  # noqa: PLC0415 - DIRACCommon only here

    opts = jdl.JdlOptions()
    texts = []
    for group in _groups(records):
        sandboxes = []
        for rec in group:
            own = [jdl.command_line(jdl.arguments(rec, opts.for_job(rec)))[0]]
            sandboxes.append(list(dict.fromkeys([PILOT_FILE, *own, *rec.spec.inputs])))
        text = (
            jdl.parametric_jdl(group, sandboxes[0], opts)
            if all(s == sandboxes[0] for s in sandboxes)
            else None
        )
        texts += [text] if text else [jdl.single_jdl(r, s, opts) for r, s in zip(group, sandboxes)]
    if any(r.spec.resources.memory % 2**20 for r in records):
        notes.append("resources.memory: JDL's MinRAM counts whole MB (rounded down)")
    return "".join(texts)


def _rsl(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _adl_sources(text: str, record: JobRecord) -> str:
    """The inputs' local paths as ``Source`` (the REST backend uploads them; a file keeps them)."""
    for item in record.spec.inputs:
        name = escape(Path(item).name)
        text = text.replace(
            f"<InputFile><Name>{name}</Name></InputFile>",
            f"<InputFile><Name>{name}</Name><Source><URI>{escape(item)}</URI></Source></InputFile>",
            1,
        )
    return text


def _arc(records: Sequence[JobRecord], target: str, notes: list[str]) -> str:
    opts = desc.DescOptions()
    if any(_GLOB.search(o) for r in records for o in r.spec.outputs):
        notes.append("outputs: ARC declares no globs; a glob keeps the whole session directory ('/')")
    if any(r.spec.resources.gpus > 1 for r in records):
        notes.append("resources.gpus: ARC asks for GPUs with a runtime environment; the count is not carried")
    if target == "adl":
        texts = [_adl_sources(desc.adl(r, opts), r) for r in records]
        bulk = f"<ActivityDescriptions>{''.join(texts)}</ActivityDescriptions>"
        return (texts[0] if len(texts) == 1 else bulk) + "\n"
    texts = []
    for rec in records:
        text = desc.xrsl(rec, opts, sources={Path(i).name: i for i in rec.spec.inputs})
        texts.append(
            text.replace(f"(jobname={_rsl(desc.job_name(rec))})", f"(jobname={_rsl(rec.spec.name)})", 1)
        )
    return (texts[0] if len(texts) == 1 else "+" + "".join(f"({t})" for t in texts)) + "\n"


def _sub(records: Sequence[JobRecord], notes: list[str]) -> str:
    clusters: dict[str, list[JobRecord]] = {}
    for rec in records:
        clusters.setdefault(rec.spec.resources.model_dump_json() + "|".join(rec.spec.inputs), []).append(rec)
    texts = []
    for cluster in clusters.values():
        outputs = {tuple(r.spec.outputs) for r in cluster}
        extra = {}
        if len({r.spec.name for r in cluster}) == 1:
            extra["batch_name"] = cluster[0].spec.name  # the cops_id are numbers where names repeat
        if len(outputs) == 1 and all('"' not in o and "," not in o for o in cluster[0].spec.outputs):
            if cluster[0].spec.outputs:
                extra["+CopsGridOutputs"] = '"' + ",".join(cluster[0].spec.outputs) + '"'
        else:
            notes.append(
                "outputs: they differ between the jobs of one cluster; HTCondor returns every new file"
            )
        text = condor_submit.describe(
            cluster, jobs_dir=Path("cops-jobs"), pilot=Path(PILOT_FILE),
            inputs=[Path(i) for i in cluster[0].spec.inputs], extra=extra,
        ).text  # fmt: skip
        texts.append(text)
    if records and records[0].id != records[0].spec.name and len({r.spec.name for r in records}) > 1:
        notes.append("name: the jobs' names are not unique: the file numbers them (cops_id) instead")
    return "\n".join(texts)


def to_native(specs: Sequence[JobSpec], target: str) -> tuple[str, list[str]]:
    """The description ``target`` (jdl, xrsl, adl, sub) of ``specs``, and what it leaves out."""
    notes: list[str] = []
    records = _records(specs, target, notes, names_as_ids=target == "sub")
    if target == "jdl":
        text = _jdl(records, notes)
    elif target in ("xrsl", "adl"):
        text = _arc(records, target, notes)
    else:
        text = _sub(records, notes)
    return text, list(dict.fromkeys(notes))
