"""Property-based fuzz: any YAML at all gives a job list or a clean JobFileError."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from computeops_grid.errors import JobFileError
from computeops_grid.jobs.loader import load_jobs

FIELDS = ["name", "image", "command", "arguments", "environment", "inputs", "outputs", "resources",
          "runtimes", "backend", "backend_options", "tags", "parameters", "jobs", "cores", "memory",
          "walltime", "gpus", "start", "stop", "step"]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(["docker://busybox", "2GiB", "01:00", "${x}", "-1", "../x"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), inner, max_size=5),
    ),
    max_leaves=20,
)
documents = st.dictionaries(st.sampled_from(FIELDS), values, max_size=8) | values


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=documents)
def test_random_structures_never_crash(tmp_path: Path, doc: object) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        jobs = load_jobs([path])
    except JobFileError as exc:
        assert exc.message
        assert "Traceback" not in exc.message
    else:
        assert all(job.spec.name for job in jobs)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_random_text_never_crashes(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_jobs([path])
    except JobFileError as exc:
        assert exc.message
