"""Folding concrete jobs back into one parametric job, and the parametric rows of the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from computeops_grid.errors import JobFileError
from computeops_grid.jobs.formats.common import Group
from computeops_grid.jobs.formats.fold import fold
from computeops_grid.jobs.loader import expand, load_jobs
from computeops_grid.jobs.model import JobSpec


def _job(name: str, *args: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": name, "image": "i", "command": "c", "arguments": list(args), "environment": {},
        "inputs": [], "outputs": [], "resources": {}, "runtimes": [], "backend_options": {},
    }  # fmt: skip
    data.update(extra)
    return data


def _fold(jobs: list[dict[str, Any]], hints: list[dict[str, str]] | None = None) -> list[dict[str, Any]]:
    return fold(jobs, Group([], hints or [{} for _ in jobs]))


def test_a_range_with_prefix_and_suffix() -> None:
    jobs = [_job(f"sim-{n}", f"out-{n}.txt", str(n - 1)) for n in range(1, 6)]
    (data,) = _fold(jobs)
    assert data["name"] == "sim-${param}"
    assert data["arguments"] == ["out-${param}.txt", "${index}"]
    assert data["parameters"] == {"param": {"start": 1, "stop": 5, "step": 1}}


def test_hints_name_the_parameters() -> None:
    jobs = [_job("j", "-i", f"{f}.dat", s) for f, s in (("a", "1"), ("b", "2"))]
    hints = [{"infile": "a.dat", "seed": "1"}, {"infile": "b.dat", "seed": "2"}]
    (data,) = _fold(jobs, hints)
    assert data["arguments"] == ["-i", "${infile}", "${seed}"]
    assert data["parameters"] == [{"infile": "a.dat", "seed": "1"}, {"infile": "b.dat", "seed": "2"}]


def test_dollars_stay_literal() -> None:
    jobs = [_job(f"j{n}", "-c", f"echo $$ $index ${{param}} {n}") for n in range(2)]
    (data,) = _fold(jobs)
    specs = expand(JobSpec.model_validate(data))
    assert [s.spec.arguments[1] for s in specs] == ["echo $$ $index ${param} 0", "echo $$ $index ${param} 1"]


def test_identical_jobs_are_counted() -> None:
    (data,) = _fold([_job("same", "x")] * 3)
    assert data["parameters"] == {"n": {"start": 0, "stop": 2}}
    assert len(expand(JobSpec.model_validate(data))) == 3


def test_jobs_that_differ_in_more_than_strings_stay_apart() -> None:
    jobs = [_job("a", "x", command="ls"), _job("b", "x", command="cat")]
    assert _fold(jobs) == jobs
    jobs = [_job("a", "x"), _job("b", "x", "y")]
    assert _fold(jobs) == jobs


def test_rows_expand_one_job_per_row(tmp_path: Path) -> None:
    path = tmp_path / "rows.yaml"
    path.write_text(
        "name: r-${a}\nimage: i\ncommand: echo\narguments: ['${b}', '$$b']\n"
        "parameters:\n  - {a: x, b: 1}\n  - {a: y, b: 2}\n"
    )
    jobs = load_jobs([path])
    assert [(j.spec.name, j.spec.arguments, j.index) for j in jobs] == [
        ("r-x", ["1", "$b"], 0), ("r-y", ["2", "$b"], 1),
    ]  # fmt: skip
    assert jobs[0].group == jobs[1].group == "r-${a}"


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ("  - {a: x}\n  - {b: y}\n", "row 2 names ['b'], the first row ['a']"),
        ("  - {}\n", "a row of parameters must name at least one parameter"),
        ("  - {index: 1}\n", "'index' is not a usable parameter name"),
    ],
)
def test_bad_rows(rows: str, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "rows.yaml"
    path.write_text("name: r\nimage: i\ncommand: echo\nparameters:\n" + rows)
    with pytest.raises(JobFileError) as info:
        load_jobs([path])
    assert reason in info.value.reason
    assert info.value.field == "parameters"
