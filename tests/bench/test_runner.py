"""The interleaved runner: failures become error rows, never a crash."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from computeops_grid.bench.image import BenchImage
from computeops_grid.bench.results import Measurement, Study, SystemInfo, WorkloadInfo, summary_rows
from computeops_grid.bench.runner import Plan, System, run_study
from computeops_grid.bench.workloads import Paths, Scale, by_name


def _bare(image: BenchImage, scratch: Path) -> System:
    return System("bare", lambda argv, _s: (argv, None), Paths(str(image.rootfs), str(scratch)))


def _flaky(tmp_path: Path, image: BenchImage, scratch: Path, ok_runs: int) -> System:
    """A real launcher process that works ``ok_runs`` times, then dies like a broken runtime."""
    script = tmp_path / "flaky-runtime"
    counter = tmp_path / "count"
    script.write_text(
        "#!/bin/sh\n"
        f"n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}\n"
        f'if [ "$n" -ge {ok_runs} ]; then echo "flaky: daemon went away" >&2; exit 125; fi\n'
        'exec "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return System(
        "flaky", lambda argv, _s: ([str(script), *argv], dict(os.environ)), _bare(image, scratch).paths
    )


def _study(systems: list[str], workloads: list[str], measurements: list) -> Study:  # type: ignore[type-arg]
    return Study(
        title="t",
        question="q",
        baseline="bare",
        systems=[SystemInfo(s, True) for s in systems],
        workloads=[WorkloadInfo(w, w) for w in workloads],
        measurements=measurements,
    )


def test_runtime_failing_mid_run_gets_error_rows(
    tmp_path: Path, bench_image: BenchImage, scratch: Path, tiny: Scale
) -> None:
    names = ["startup", "cpu-scalar", "small-files"]
    plan = Plan(by_name(names), tiny, repeats=5, scratch=scratch, files_sum=bench_image.files_sum)
    systems = [_bare(bench_image, scratch), _flaky(tmp_path, bench_image, scratch, ok_runs=2)]
    seen: list[Measurement] = []
    ms = run_study(systems, plan, progress=seen.append)
    assert ms == seen
    assert len(ms) == 5 * 3 * 2
    assert all(m.value is not None and m.value > 0 for m in ms if m.system == "bare")
    flaky = [m for m in ms if m.system == "flaky"]
    assert [m.workload for m in flaky if m.value is not None] == ["startup", "cpu-scalar"]
    assert {m.error for m in flaky if m.value is None} >= {"exit 125: flaky: daemon went away"}
    assert any(m.error.startswith("skipped: exit 125") for m in flaky)  # no endless retries

    rows = {(r.workload, r.system): r for r in summary_rows(_study(["bare", "flaky"], names, ms))}
    assert all(rows[(w, "bare")].summary is not None and rows[(w, "bare")].ratio is None for w in names)
    assert rows[("small-files", "flaky")].summary is None  # never worked: an error row
    assert "exit 125" in rows[("small-files", "flaky")].error
    partial = rows[("startup", "flaky")]  # worked once, then failed: value plus the error
    assert (partial.n_ok, partial.n_failed) == (1, 4)
    assert partial.summary is not None
    assert partial.ratio


def test_wrong_result_inside_a_runtime_is_an_error_row(
    bench_image: BenchImage, scratch: Path, tiny: Scale
) -> None:
    def corrupt(argv: list[str], _s: Path) -> tuple[list[str], None]:
        return [*argv[:-1], str(int(argv[-1]) + 1)], None  # runs one iteration too many

    plan = Plan(by_name(["cpu-scalar"]), tiny, repeats=2, scratch=scratch, files_sum=bench_image.files_sum)
    bad = System("corrupt", corrupt, Paths(str(bench_image.rootfs), str(scratch)))
    ms = run_study([_bare(bench_image, scratch), bad], plan)
    assert [m.error.split(":")[0] for m in ms if m.system == "corrupt"] == ["cpu-scalar"] * 2
    assert all("checksum" in m.error for m in ms if m.system == "corrupt")


def test_missing_launcher_and_timeout_are_error_rows(
    bench_image: BenchImage, scratch: Path, tiny: Scale
) -> None:
    gone = System("gone", lambda a, _s: (["/nonexistent/runtime", *a], None), Paths("", "/scratch"))
    slow = System("slow", lambda a, _s: (["sleep", "5"], None), Paths("", "/scratch"))
    plan = Plan(by_name(["startup"]), tiny, 1, scratch, bench_image.files_sum, timeout=0.3)
    ms = run_study([gone, slow], plan)
    errors = {m.system: m.error for m in ms}
    assert "No such file" in errors["gone"]
    assert "timed out" in errors["slow"]
    rows = summary_rows(_study(["bare", "gone", "slow"], ["startup"], ms))
    assert {r.system: r.error for r in rows}["bare"] == "no measurement"
