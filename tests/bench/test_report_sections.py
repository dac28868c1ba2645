"""The report's criteria, resolution and interoperability sections, from a saved study (fast)."""

from __future__ import annotations

from pathlib import Path

from computeops_grid.bench import report
from computeops_grid.bench.results import Measurement, Study, SystemInfo, WorkloadInfo


def _study() -> Study:
    ms = [
        Measurement(s, "cpu-scalar", r, v + r * 0.01)
        for r in range(5)
        for s, v in (("bare-metal", 1.0), ("lxc", 1.1))
    ]
    resolution = {
        "target": 0.03,
        "first_pass_repeats": 5,
        "cap": 40,
        "budget_s": 600.0,
        "goal": {"cpu-scalar": 12},
        "done_repeats": 12,
        "stopped": "every workload reached its number",
        "extension_s": 30.0,
        "first": [{"workload": "cpu-scalar", "system": "lxc", "n": 5, "half_width": 0.046, "needed": 12}],
        "final": [{"workload": "cpu-scalar", "system": "lxc", "n": 12, "half_width": 0.029, "needed": 12}],
    }
    interop = {
        "answer": "2 of 2 runs worked.",
        "reference": "docker (native, docker)",
        "seconds": 20.0,
        "notes": [],
        "runs": [
            {
                "runtime": "lxc",
                "image": "docker",
                "how": "wrapper adapter",
                "commands": ["a", "b"],
                "ok": True,
                "checksum": "abc",
                "error": "",
                "differs": ["+ greeting unset"],
            },
        ],
        "steps": [{"what": "buildah build (docker)", "rc": 0, "seconds": 1.5, "tail": ""}],
    }
    return Study(
        title="t",
        question="q?",
        baseline="bare-metal",
        systems=[SystemInfo("bare-metal", True), SystemInfo("lxc", True)],
        workloads=[WorkloadInfo("cpu-scalar", "CPU")],
        measurements=ms,
        features=[{"runtime": "lxc", "exit code": "42 passed", "user namespace": "no (host uid map)"}],
        criteria={"security": ["user namespace"], "ease of use": ["works rootless (measured)"]},
        extra={"resolution": resolution, "interop": interop},
    )


def test_sections_group_the_criteria_and_show_resolution_and_interop(tmp_path: Path) -> None:
    study = _study()
    written = report.write(study, tmp_path, "answer")
    text = written.markdown.read_text()
    feature = text[text.index("## Feature matrix") : text.index("## Resolution")]
    assert "exit code" in feature and "user namespace" not in feature  # shown under its criterion
    assert "| lxc | no (host uid map) |" in text[text.index("## Criterion: security") :]
    assert "| lxc | not measured |" in text[text.index("## Criterion: ease of use") :]
    assert "| cpu-scalar | lxc | 5 | 4.6% | 12 | 12 | 2.9% | yes |" in text
    assert "1 of 1 steady ratios reached ±3%" in text
    assert "## Interoperability: develop with Docker, deploy with Singularity?" in text
    assert "| lxc | docker | wrapper adapter | 2 | yes | abc | + greeting unset |" in text
    again = Study.load(written.json)
    assert again.extra == study.extra and again.criteria == study.criteria
