"""Read job files: YAML (or a native description) -> validated JobSpecs -> expanded elements.

The one entry for job files. A file in another tool's format (DIRAC JDL, ARC xRSL or ADL, an
HTCondor submit file: see :mod:`computeops_grid.jobs.formats`) is told by its content and read
into the same model, with notes naming each attribute the model does not carry.
Errors name the file, the line and the dotted field (or the native attribute), and say what
was expected.
"""

from __future__ import annotations

import itertools
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from computeops_grid.errors import JobFileError
from computeops_grid.jobs.formats.common import Note, ReadOptions
from computeops_grid.jobs.formats.detect import detect
from computeops_grid.jobs.model import NAME_RE, JobSpec, RangeSpec

MAX_JOBS_PER_FILE = 100_000


@dataclass(frozen=True)
class ExpandedJob:
    """One concrete job: the spec with parameters substituted, and where it came from."""

    spec: JobSpec
    params: dict[str, str]
    index: int
    group: str  # name of the parametric job it belongs to
    source: str


class _Loader(yaml.SafeLoader):
    """SafeLoader that also keeps each node so errors can point at a line."""


def _compose_documents(text: str, path: str) -> list[yaml.Node]:
    try:
        return [node for node in yaml.compose_all(text, Loader=_Loader) if node is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise JobFileError(
            f"not valid YAML: {problem}", path=path, line=line, hint="check indentation and quoting"
        ) from None


def _construct(node: yaml.Node, path: str) -> Any:
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        line = node.start_mark.line + 1
        raise JobFileError(f"not valid YAML: {exc}", path=path, line=line) from None
    finally:
        loader.dispose()


def _node_at(node: yaml.Node, loc: tuple[int | str, ...]) -> yaml.Node:
    """Follow a pydantic error location through the YAML node tree as far as it goes."""
    current = node
    for key in loc:
        if isinstance(current, yaml.MappingNode):
            match = next((v for k, v in current.value if getattr(k, "value", None) == key), None)
            if match is None:
                match = next((k for k, _ in current.value if getattr(k, "value", None) == key), None)
                return match if match is not None else current
            current = match
        elif isinstance(current, yaml.SequenceNode) and isinstance(key, int) and key < len(current.value):
            current = current.value[key]
        else:
            break
    return current


def _explain(err: ErrorDetails) -> str:
    kind, msg = err["type"], str(err["msg"])
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see etc/examples/ for the known fields)"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_type" and isinstance(err.get("input"), (bool, int, float)):
        return f"expected text, got {err['input']!r}; quote it (YAML reads true, no, 1.5 as non-text)"
    if kind == "literal_error":
        return msg.replace("Input should be", "must be one of")
    return str(msg).removeprefix("Value error, ")


def _validate(data: Any, node: yaml.Node, path: str, prefix: tuple[str | int, ...] = ()) -> JobSpec:
    if not isinstance(data, dict):
        raise JobFileError(
            f"a job must be a mapping of fields, got {type(data).__name__}",
            path=path,
            line=node.start_mark.line + 1,
            hint="start with `name:`, `image:` and `command:`",
        )
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        loc, reason = _located(exc)
        line = _node_at(node, loc).start_mark.line + 1
        field = ".".join(str(p) for p in (*prefix, *loc))
        raise JobFileError(reason, path=path, line=line, field=field) from None


def validate_spec(data: Any, where: str = "") -> JobSpec:
    """A job given as a mapping (built in code): errors name ``where`` and the dotted field."""
    if isinstance(data, JobSpec):
        return data
    if not isinstance(data, dict):
        raise JobFileError(f"a job must be a mapping of fields, got {type(data).__name__}", path=where)
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        loc, reason = _located(exc)
        raise JobFileError(reason, path=where, field=".".join(str(p) for p in loc)) from None


def _located(exc: ValidationError) -> tuple[tuple[int | str, ...], str]:
    """The field (a path through the job) and the reason of a validation error."""
    errors = exc.errors()
    # in a union (parameters: list | range) prefer the error that explains a value
    err = next((e for e in errors if e["type"] == "value_error"), errors[0])
    loc = tuple(
        p
        for p in err["loc"]
        if not (isinstance(p, str) and p.startswith(("function-", "list[", "dict[", "union[")))
    )
    # pydantic adds union member names ("list[...]", "RangeSpec") to locations; drop them
    loc = tuple(p for p in loc if p not in {"RangeSpec", "str", "int", "float"})
    reason = _explain(err)
    if loc[:1] == ("parameters",) and err["type"] != "value_error":
        reason = "must be a non-empty list of values or a range {start, stop[, step]}"
        if len(loc) < 2 or not isinstance(loc[1], str):  # the whole field, or a row
            reason = "must map names to lists or ranges, or be a list of rows {name: value, ...}"
    return loc, reason


def _job_nodes(doc: yaml.Node, data: Any, path: str) -> list[tuple[yaml.Node, Any, tuple[str | int, ...]]]:
    if isinstance(data, dict) and set(data) == {"jobs"}:
        jobs_node = _node_at(doc, ("jobs",))
        if not isinstance(data["jobs"], list) or not isinstance(jobs_node, yaml.SequenceNode):
            raise JobFileError(
                "must be a list of jobs", path=path, line=jobs_node.start_mark.line + 1, field="jobs"
            )
        return [(n, d, ("jobs", i)) for i, (n, d) in enumerate(zip(jobs_node.value, data["jobs"]))]
    return [(doc, data, ())]


@dataclass(frozen=True)
class LoadedFile:
    """The jobs of one file (validated, not expanded), its format and the notes of its reading."""

    format: str  # yaml, jdl, xrsl, adl or sub
    specs: list[JobSpec]
    notes: list[Note]


def load_file(path: Path, options: ReadOptions | None = None) -> LoadedFile:
    """One job file in any format: YAML, JDL, xRSL, ADL or HTCondor submit file."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = "give the path of a job file (YAML, JDL, xRSL, ADL or HTCondor submit file)"
        raise JobFileError("no such file", path=shown, hint=hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobFileError(f"cannot read: {exc}", path=shown) from None
    fmt = detect(text, path)
    if fmt == "yaml":
        return LoadedFile(fmt, _yaml_specs(text, shown), [])
    from computeops_grid.jobs.formats.read import read_native  # noqa: PLC0415 - only for native files

    specs, notes = read_native(shown, text, fmt, options or ReadOptions())
    return LoadedFile(fmt, specs, notes)


def load_specs(path: Path, options: ReadOptions | None = None) -> list[JobSpec]:
    """All jobs of one file, validated but not expanded."""
    return load_file(path, options).specs


def _yaml_specs(text: str, shown: str) -> list[JobSpec]:
    specs: list[JobSpec] = []
    for doc in _compose_documents(text, shown):
        data = _construct(doc, shown)
        for node, item, prefix in _job_nodes(doc, data, shown):
            specs.append(_validate(item, node, shown, prefix))
    if not specs:
        raise JobFileError("contains no job", path=shown, hint="see etc/examples/hello.yaml")
    return specs


def _combinations(spec: JobSpec) -> list[dict[str, str]]:
    """The parameter values of each job: one per row, or one per combination of the lists."""
    if isinstance(spec.parameters, list):
        return [{k: str(v) for k, v in row.items()} for row in spec.parameters]
    names = list(spec.parameters)
    lists = [
        v.values() if isinstance(v, RangeSpec) else [str(x) for x in v] for v in spec.parameters.values()
    ]
    total = 1
    for values in lists:
        total *= len(values)
    if total > MAX_JOBS_PER_FILE:
        raise JobFileError(f"expands to {total} jobs, more than {MAX_JOBS_PER_FILE}", field="parameters")
    return [dict(zip(names, combo)) for combo in itertools.product(*lists)]


def _substitute(spec: JobSpec, params: dict[str, str]) -> JobSpec:
    def sub(text: str) -> str:
        return string.Template(text).safe_substitute(params)

    return spec.model_copy(
        update={
            "name": sub(spec.name),
            "arguments": [sub(a) for a in spec.arguments],
            "environment": {k: sub(v) for k, v in spec.environment.items()},
            "outputs": [sub(o) for o in spec.outputs],
            "inputs": [sub(i) for i in spec.inputs],
            "stage_in": [
                i.model_copy(update={"url": sub(i.url), "name": sub(i.name)}) for i in spec.stage_in
            ],
            "stage_out": [
                o.model_copy(update={"path": sub(o.path), "to": sub(o.to)}) for o in spec.stage_out
            ],
            "parameters": {},
        }
    )


def expand(spec: JobSpec, source: str = "") -> list[ExpandedJob]:
    """One job per combination of parameter values (cartesian product) or per row, in order."""
    if not spec.parameters:
        _check_name(spec.name, source)
        return [ExpandedJob(spec, {}, 0, spec.name, source)]
    try:
        combinations = _combinations(spec)
    except JobFileError as exc:
        raise JobFileError(exc.reason, path=source, field=exc.field) from None
    jobs = []
    for index, values in enumerate(combinations):
        params = dict(values, index=str(index))
        concrete = _substitute(spec, params)
        _check_name(concrete.name, source)
        jobs.append(ExpandedJob(concrete, params, index, spec.name, source))
    return jobs


def _check_name(name: str, source: str) -> None:
    if not re.match(NAME_RE, name):
        raise JobFileError(
            f"expands to {name!r}, which is not a valid job name (letters, digits, . _ -)",
            path=source,
            field="name",
        )


def load_jobs(
    paths: list[Path], options: ReadOptions | None = None, notes: list[str] | None = None
) -> list[ExpandedJob]:
    """Every concrete job of every file, in file order; ``notes`` (when given) receives one
    line per attribute of a native description that the jobs do not carry as written."""
    jobs: list[ExpandedJob] = []
    for path in paths:
        loaded = load_file(path, options)
        if notes is not None:
            notes.extend(n.text(str(path)) for n in loaded.notes)
        for spec in loaded.specs:
            jobs.extend(expand(spec, str(path)))
    return jobs
