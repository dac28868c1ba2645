"""Job files: the examples load, every bad file in the corpus gives its exact message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from computeops_grid.errors import JobFileError
from computeops_grid.jobs.loader import load_jobs, load_specs
from computeops_grid.jobs.model import parse_memory, parse_walltime

ROOT = Path(__file__).resolve().parents[2]
BAD = sorted((ROOT / "tests" / "data" / "jobs").glob("bad-*.yaml"))
EXPECT = re.compile(r"^# expect: line (\w+), field ([\w.]*): (.+)$")


def test_corpus_is_not_empty() -> None:
    assert len(BAD) >= 15


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_job_file_names_line_field_and_reason(path: Path) -> None:
    match = EXPECT.match(path.read_text().splitlines()[0])
    assert match, f"{path.name} lacks its '# expect:' line"
    line, field, reason = match.groups()
    with pytest.raises(JobFileError) as info:
        load_jobs([path])
    err = info.value
    assert err.path == str(path)
    assert str(err.line) == line
    assert err.field == field
    assert reason in err.reason
    assert str(path) in err.message  # the user sees file, line and field in one line


def test_missing_file_is_a_job_file_error(tmp_path: Path) -> None:
    with pytest.raises(JobFileError, match="no such file"):
        load_jobs([tmp_path / "nope.yaml"])


def test_examples_load() -> None:
    specs = load_specs(ROOT / "etc" / "examples" / "hello.yaml")
    assert specs[0].name == "hello"
    assert specs[0].resources.memory == 512 * 2**20
    assert specs[0].resources.walltime == 600
    for example in (ROOT / "etc" / "examples").glob("*.yaml"):
        assert load_jobs([example])


def test_parametric_range_expands_and_substitutes() -> None:
    jobs = load_jobs([ROOT / "etc" / "examples" / "parametric.yaml"])
    assert [j.spec.name for j in jobs] == [f"sim-{i}" for i in range(1, 11)]
    assert jobs[3].spec.outputs == ["out-4.txt"]
    assert "seed 4 index 3" in jobs[3].spec.arguments[1]
    assert jobs[3].params == {"seed": "4", "index": "3"}
    assert all(j.spec.parameters == {} for j in jobs)


def test_cartesian_product_and_unknown_placeholders_kept(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: j-${a}-${b}\nimage: x\ncommand: sh\narguments: ['-c', 'echo $HOME ${a}${b}']\n"
        "parameters:\n  a: [x, y]\n  b: [1, 2, 3]\n"
    )
    jobs = load_jobs([path])
    assert [j.spec.name for j in jobs] == ["j-x-1", "j-x-2", "j-x-3", "j-y-1", "j-y-2", "j-y-3"]
    assert jobs[4].spec.arguments == ["-c", "echo $HOME y2"]


def test_multi_document_and_jobs_list(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("name: a\nimage: x\ncommand: c\n---\njobs:\n  - {name: b, image: x, command: c}\n")
    assert [s.name for s in load_specs(path)] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "size"),
    [("2GiB", 2 * 2**30), ("512MB", 512 * 10**6), ("1.5G", 1_500_000_000), (1024, 2**30), ("100", 100)],
)
def test_memory_sizes(text: str | int, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize(
    ("text", "seconds"), [("1-00:00:00", 86400), ("01:30", 5400), (15, 900), ("0:00:30", 30)]
)
def test_walltimes(text: str | int, seconds: int) -> None:
    assert parse_walltime(text) == seconds


def test_spec_round_trips_through_json() -> None:
    from computeops_grid.jobs.model import JobSpec

    spec = load_specs(ROOT / "etc" / "examples" / "hello.yaml")[0]
    again = JobSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert again.resources.memory == 512 * 2**20
    assert again.resources.walltime == 600
