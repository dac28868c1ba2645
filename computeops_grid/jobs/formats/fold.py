"""Fold the concrete jobs of one group back into one parametric job of the model.

Readers expand parametric descriptions with the format's own rules (HTCondor's macro engine,
DIRAC's parameter sequences), so every job is exactly what that tool would run. Folding finds
what differs between the jobs (name, argument positions, environment values, inputs, outputs)
and writes each such string as a template over the group's variables (``${infile}``,
``${index}``), a common prefix and suffix around a new parameter, or a parameter of its own.
The result is checked by expanding it with the loader: it must give back exactly the same
jobs, else the jobs stay separate. Jobs that differ in what cannot be a parameter (image,
command, resources) stay separate too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from typing import Any, Union

from pydantic import ValidationError

from computeops_grid.errors import JobFileError
from computeops_grid.jobs.formats.common import Group
from computeops_grid.jobs.loader import expand
from computeops_grid.jobs.model import JobSpec

Path_ = tuple[Union[str, int], ...]
Part = tuple[str, str]  # ("lit", text) or ("var", name)
_SLOTS = ("name", "outputs", "inputs", "arguments", "environment")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _slots(data: dict[str, Any]) -> dict[Path_, str]:
    found: dict[Path_, str] = {("name",): data["name"]}
    for key in ("outputs", "inputs", "arguments"):
        found.update({(key, i): v for i, v in enumerate(data[key])})
    found.update({("environment", k): v for k, v in data["environment"].items()})
    return dict(sorted(found.items(), key=lambda kv: _SLOTS.index(str(kv[0][0]))))


def _shape(data: dict[str, Any]) -> str:
    """Everything a parameter cannot vary, and where the strings are."""
    fixed = {k: v for k, v in data.items() if k not in _SLOTS}
    return json.dumps([fixed, [list(p) for p in _slots(data)]], sort_keys=True, default=str)


def _mark(text: str, values: dict[str, str]) -> list[Part]:
    """``text`` cut into literal parts and the variables whose values occur in it."""
    found: dict[str, str] = {}
    for key, value in values.items():  # the first variable with a value wins (``index`` first)
        if value:
            found.setdefault(value, key)
    if not found:
        return [("lit", text)]
    pattern = re.compile("|".join(re.escape(v) for v in sorted(found, key=len, reverse=True)))
    parts: list[Part] = []
    last = 0
    for match in pattern.finditer(text):
        if match.start() > last:
            parts.append(("lit", text[last : match.start()]))
        parts.append(("var", found[match.group()]))
        last = match.end()
    if last < len(text):
        parts.append(("lit", text[last:]))
    return parts


def _retemplate(column: list[str], variables: dict[str, list[str]]) -> list[Part] | None:
    rows = [_mark(text, {k: v[i] for k, v in variables.items()}) for i, text in enumerate(column)]
    first = rows[0]
    if all(r == first for r in rows[1:]) and any(kind == "var" for kind, _ in first):
        return first
    return None


def _new_name(path: Path_, taken: set[str]) -> str:
    key, *rest = path
    base = {"name": "param", "outputs": "output", "inputs": "input", "arguments": "arg"}.get(str(key), "")
    if key == "environment":
        base = str(rest[0]).lower() if _IDENT.match(str(rest[0])) else "env"
    elif rest:
        base = f"{base}{rest[0]}"
    name, number = base, 2
    while name in taken or name == "index":
        name, number = f"{base}_{number}", number + 1
    return name


def _split(column: list[str], path: Path_, variables: dict[str, list[str]]) -> list[Part]:
    """``prefix${p}suffix`` around what differs; ``p`` is an existing variable when it has
    the same values, else a new one (added to ``variables``)."""
    prefix = os.path.commonprefix(column)  # noqa: RUF071 - strings, character by character on purpose
    rests = [c[len(prefix) :] for c in column]
    reverse = [r[::-1] for r in rests]
    suffix = os.path.commonprefix(reverse)[::-1] if prefix else ""  # noqa: RUF071 - `a.txt`: whole
    core = [r[: len(r) - len(suffix)] for r in rests]
    name = next((k for k, v in variables.items() if v == core), None)
    if name is None:
        name = _new_name(path, set(variables))
        variables[name] = core
    parts: list[Part] = [("lit", prefix)] if prefix else []
    return [*parts, ("var", name), *([("lit", suffix)] if suffix else [])]


def _escape(text: str, names: set[str]) -> str:
    """A literal for ``string.Template.safe_substitute``: ``$`` doubled where it would act."""
    if not names or "$" not in text:
        return text
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    pattern = rf"\$(?=\$|\{{(?:{alternatives})\}}|(?:{alternatives})(?![A-Za-z0-9_]))"
    return re.sub(pattern, "$$", text)


def _render(parts: list[Part], names: set[str]) -> str:
    return "".join("${" + v + "}" if kind == "var" else _escape(v, names) for kind, v in parts)


def _put(data: dict[str, Any], path: Path_, value: str) -> None:
    if len(path) == 1:
        data[str(path[0])] = value
    else:
        data[str(path[0])][path[1]] = value


def _parameters(used: list[str], variables: dict[str, list[str]], count: int) -> Any:
    if not used:
        return {"n": {"start": 0, "stop": count - 1}}
    if len(used) > 1:
        return [{k: variables[k][i] for k in used} for i in range(count)]
    values = variables[used[0]]
    if all(re.fullmatch(r"-?[1-9][0-9]*|0", v) for v in values) and len(values) > 1:
        start, step = int(values[0]), int(values[1]) - int(values[0])
        if step >= 1 and values == [str(start + i * step) for i in range(count)]:
            return {used[0]: {"start": start, "stop": int(values[-1]), "step": step}}
    return {used[0]: values}


def _build(datas: list[dict[str, Any]], hints: list[dict[str, str]]) -> dict[str, Any]:
    count = len(datas)
    columns = {p: [_slots(d)[p] for d in datas] for p in _slots(datas[0])}
    variables: dict[str, list[str]] = {"index": [str(i) for i in range(count)]}  # first: preferred
    variables.update(
        (k, [h.get(k, "") for h in hints])
        for k in dict.fromkeys(k for h in hints for k in h)
        if _IDENT.match(k) and k != "index" and len({h.get(k, "") for h in hints}) > 1
    )
    templates: dict[Path_, list[Part]] = {}
    for path, column in columns.items():
        if len(set(column)) > 1:
            same = next((k for k, v in variables.items() if v == column), None)
            found = [("var", same)] if same else _retemplate(column, variables)
            templates[path] = found or _split(column, path, variables)
    used = list(dict.fromkeys(v for parts in templates.values() for kind, v in parts if kind == "var"))
    params = [u for u in used if u != "index"]
    names = {*params, "index"}
    data: dict[str, Any] = json.loads(json.dumps(datas[0]))
    for path in columns:
        parts = templates.get(path) or [("lit", columns[path][0])]
        _put(data, path, _render(parts, names))
    data["parameters"] = _parameters(params, variables, count)
    return data


def _expands_to(data: dict[str, Any], datas: list[dict[str, Any]]) -> bool:
    try:
        jobs = expand(JobSpec.model_validate(data))
    except (ValidationError, JobFileError):
        return False
    if len(jobs) != len(datas):
        return False
    for job, want in zip(jobs, datas):
        got = job.spec.model_dump(include=set(_SLOTS))
        if any(got[k] != want[k] for k in _SLOTS):
            return False
    return True


def fold(datas: Sequence[dict[str, Any]], group: Group) -> list[dict[str, Any]]:
    """One parametric job's data for the group, or the jobs' own data when they cannot fold."""
    datas = list(datas)
    if len(datas) < 2 or len({_shape(d) for d in datas}) > 1:
        return datas
    data = _build(datas, group.hints)
    return [data] if _expands_to(data, datas) else datas
