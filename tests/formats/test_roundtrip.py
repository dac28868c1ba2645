"""YAML -> JDL/xRSL/ADL/submit file -> YAML: the same jobs come back, and a second trip changes
nothing (the native texts are the backends' own writers' output, read back through the
wrapper's command line)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from computeops_grid.jobs.formats.common import ReadOptions
from computeops_grid.jobs.formats.write import TARGETS, to_native, to_yaml
from computeops_grid.jobs.loader import expand, load_file, load_specs
from computeops_grid.jobs.model import JobSpec
from tests.formats.conftest import NATIVE, ROOT

SOURCES = sorted((ROOT / "etc" / "examples").glob("*.yaml")) + sorted((NATIVE / "roundtrip").glob("*.yaml"))
SUFFIX = {"jdl": ".jdl", "xrsl": ".xrsl", "adl": ".adl", "sub": ".sub"}


def _through(specs: list[JobSpec], target: str, tmp_path: Path, name: str) -> list[JobSpec]:
    text, _ = to_native(specs, target)
    path = tmp_path / f"{name}{SUFFIX[target]}"
    path.write_text(text)
    return load_file(path, ReadOptions(target=TARGETS[target])).specs


def _jobs(specs: list[JobSpec], target: str) -> list[dict[str, Any]]:
    """What each concrete job runs, as far as ``target`` carries it."""
    found = []
    for spec in specs:
        for job in expand(spec):
            data = job.spec.model_dump(exclude={"parameters", "tags", "backend", "backend_options"})
            if target in ("xrsl", "adl"):  # ARC asks for GPUs by runtime environment: yes or no
                data["resources"]["gpus"] = min(1, data["resources"]["gpus"])
            if target == "sub" and len({tuple(j.spec.outputs) for j in expand(spec)}) > 1:
                data["outputs"] = []  # outputs that differ per job: HTCondor returns every new file
            found.append(data)
    return found


@pytest.mark.parametrize("target", list(SUFFIX))
@pytest.mark.parametrize("source", SOURCES, ids=[p.name for p in SOURCES])
def test_round_trip_gives_the_same_jobs(source: Path, target: str, tmp_path: Path) -> None:
    specs = load_specs(source)
    back = _through(specs, target, tmp_path, "once")
    assert _jobs(back, target) == _jobs(specs, target)
    assert sum(len(expand(s)) for s in back) == sum(len(expand(s)) for s in specs)


@pytest.mark.parametrize("target", list(SUFFIX))
@pytest.mark.parametrize("source", SOURCES, ids=[p.name for p in SOURCES])
def test_second_round_trip_changes_nothing(source: Path, target: str, tmp_path: Path) -> None:
    once = _through(load_specs(source), target, tmp_path, "once")
    twice = _through(once, target, tmp_path, "twice")
    assert to_yaml(twice) == to_yaml(once)


@pytest.mark.parametrize("target", list(SUFFIX))
def test_a_parametric_job_comes_back_parametric(target: str, tmp_path: Path) -> None:
    """etc/examples/parametric.yaml (10 JDLs: DIRAC's parametric JDL cannot vary outputs)."""
    specs = load_specs(ROOT / "etc" / "examples" / "parametric.yaml")
    (back,) = _through(specs, target, tmp_path, "p")
    assert back.name == "sim-${param}"
    assert back.arguments[1] == 'echo "seed ${param} index ${index}" > out-${param}.txt; cat out-${param}.txt'
    assert isinstance(back.parameters, dict)
    assert back.parameters["param"].values() == [str(n) for n in range(1, 11)]  # type: ignore[union-attr]


def test_a_parametric_jdl_comes_back_parametric(tmp_path: Path) -> None:
    """Jobs that differ only in their arguments: one DIRAC parametric JDL, one job back."""
    spec = JobSpec(name="p-${x}", image="i", command="echo", arguments=["${x}"], parameters={"x": ["a", "b"]})
    text, _ = to_native([spec], "jdl")
    assert text.count("JobName") == 1 and "Parameters = {" in text
    (back,) = _through([spec], "jdl", tmp_path, "p")
    (name,) = back.parameters  # the writer's sequence name (Parameters.a8): one parameter
    template = "${" + name + "}"
    assert (back.name, back.arguments, back.parameters) == (f"p-{template}", [template], {name: ["a", "b"]})


def test_convert_lists_what_the_target_cannot_carry() -> None:
    spec = JobSpec(
        name="t", image="docker://busybox", command="true", tags=["x"], backend="slurm",
        outputs=["out-*.txt"], backend_options={"partition": "debug", "queue": "q", "site": ["S"]},
        resources={"gpus": 2},
    )  # fmt: skip
    _, jdl = to_native([spec], "jdl")
    assert "tags: jdl has no place for them" in jdl
    assert "backend_options.partition: not understood by diracx backends" in jdl
    assert not any("backend_options.site" in n for n in jdl)
    _, arc = to_native([spec], "xrsl")
    assert any(n.startswith("outputs: ARC declares no globs") for n in arc)
    assert any(n.startswith("resources.gpus") for n in arc)
    assert "backend_options.site: not understood by arc backends" in arc
    _, sub = to_native([spec], "sub")
    assert "backend_options.queue: not understood by htcondor-ce backends" in sub


def test_xrsl_names_the_job_and_sends_its_inputs() -> None:
    spec = JobSpec(name="named", image="docker://busybox", command="cat", inputs=["../data/in.txt"])
    text, _ = to_native([spec], "xrsl")
    assert '(jobname="named")' in text
    assert re.search(r'\("in\.txt" "\.\./data/in\.txt"\)', text)
