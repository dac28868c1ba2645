"""Resolution of the full run: repetitions for ±3 % from the measured spread, then run (capped)."""

from __future__ import annotations

from pathlib import Path

from computeops_grid.bench import resolution, stats
from computeops_grid.bench.image import BenchImage
from computeops_grid.bench.results import Row
from computeops_grid.bench.runner import Plan, System
from computeops_grid.bench.workloads import Paths, Scale, by_name


def _row(workload: str, low: float, high: float, n: int = 10) -> Row:
    return Row(workload, "rt", n, 0, ratio=stats.Ratio(1.0, low, high, 0.95))


def test_needed_repetitions_grow_with_the_square_of_the_width() -> None:
    rows = [_row("cpu-scalar", 0.94, 1.06), _row("seq-io", 0.97, 1.03), _row("startup", 0.5, 1.5)]
    needs = {n.workload: n for n in resolution.needs(rows)}
    assert set(needs) == {"cpu-scalar", "seq-io"}  # start-up is not a steady workload
    assert needs["cpu-scalar"].needed == 40  # ±6 % after 10 -> 10 x (6/3)^2
    assert needs["seq-io"].needed == 10  # already ±3 %
    table = resolution.table(list(needs.values()), list(needs.values()))
    assert table[1][4:] == ["40", "10", "6.0%", "no"] and table[2][-1] == "yes"


def test_extend_runs_the_workloads_that_need_it_up_to_the_cap(
    bench_image: BenchImage, scratch: Path, tiny: Scale
) -> None:
    paths = Paths(str(bench_image.rootfs), str(scratch))
    systems = [
        System("bare", lambda a, _s: (a, None), paths),
        System("again", lambda a, _s: (a, None), paths),
    ]
    plan = Plan(by_name(["cpu-scalar", "seq-io"]), tiny, 2, scratch, bench_image.files_sum)
    first = [
        resolution.Need("cpu-scalar", "again", 2, 0.2, 500),
        resolution.Need("seq-io", "again", 2, 0.01, 2),
    ]
    extra, summary = resolution.extend(systems, plan, first, cap=4, budget_s=60)
    assert {(m.workload, m.rep) for m in extra} == {("cpu-scalar", 2), ("cpu-scalar", 3)}
    assert len(extra) == 4 and all(m.value is not None for m in extra)  # both systems, each round
    assert summary["done_repeats"] == 4
    assert summary["stopped"] == "cap of 4 repetitions reached; 1 ratio(s) needed more"
