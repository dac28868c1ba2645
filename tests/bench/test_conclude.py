"""The report's answer is drawn from the data: known measurements give known sentences."""

from __future__ import annotations

from computeops_grid.bench.results import Measurement, Study, SystemInfo, WorkloadInfo
from computeops_grid.bench.runtime_study import conclude


def _study(values: dict[tuple[str, str], list[float]]) -> Study:
    ms = [Measurement(sys, wl, i, v) for (sys, wl), vs in values.items() for i, v in enumerate(vs)]
    return Study(
        title="t",
        question="q",
        baseline="bare-metal",
        systems=[SystemInfo("bare-metal", True), SystemInfo("fast", True), SystemInfo("slow", True)],
        workloads=[WorkloadInfo("startup", "s"), WorkloadInfo("cpu", "c")],
        measurements=ms,
        environment={"load average at end": "9.00"},
    )


TIGHT = [1.00, 1.01, 0.99, 1.00, 1.02, 0.98, 1.00]


def test_tight_data_gives_a_verdict_without_caveat() -> None:
    answer = conclude(
        _study({
            ("bare-metal", "startup"): [0.001] * 7, ("fast", "startup"): [0.005] * 7,
            ("slow", "startup"): [0.3] * 7, ("bare-metal", "cpu"): TIGHT,
            ("fast", "cpu"): TIGHT, ("slow", "cpu"): [2 * v for v in TIGHT],
        })
    )  # fmt: skip
    assert answer.startswith("Once started, fast run every workload within 10% of bare metal")
    assert "slow costs 2.00x bare metal on cpu." in answer
    assert "Start-up latency is where they differ (bare metal 1.0 ms): fast 5 ms, slow 300 ms." in answer
    assert "Caveat" not in answer


def test_noisy_data_gets_a_caveat_with_the_resolution() -> None:
    noisy = [1.0, 0.5, 1.6, 1.1, 0.7, 1.4, 0.9]
    answer = conclude(
        _study({
            ("bare-metal", "cpu"): noisy, ("fast", "cpu"): noisy[::-1],
            ("slow", "cpu"): [v * 1.05 for v in noisy],
        })
    )  # fmt: skip
    assert "Caveat: this run resolves differences of about ±" in answer
    assert "load average 9.00 at the end" in answer
    assert "slow costs" not in answer  # a 5 % difference inside ±30 % noise is no verdict


def test_docker_is_compared_with_the_hpc_runtimes_and_its_features_quoted() -> None:
    study = _study({
        ("bare-metal", "startup"): [0.001] * 7, ("docker", "startup"): [0.13] * 7,
        ("charliecloud", "startup"): [0.004] * 7, ("bare-metal", "cpu"): TIGHT,
        ("docker", "cpu"): TIGHT, ("charliecloud", "cpu"): TIGHT,
    })  # fmt: skip
    study.systems = [SystemInfo(n, True) for n in ("bare-metal", "docker", "charliecloud")]
    study.features = [
        {"runtime": "docker", "daemon (who holds the payload)": "detached: parent is containerd-shim",
         "memory cap of the caller honoured": "no: escapes", "works rootless (measured)": "no (as nobody)"},
    ]  # fmt: skip
    answer = conclude(study)
    assert "Docker against charliecloud: start-up 130 ms vs charliecloud 4 ms;" in answer
    assert "worst steady-state cost docker 1.00x, charliecloud 1.00x." in answer
    assert (
        "memory cap of the caller honoured: no: escapes; works rootless (measured): no (as nobody)." in answer
    )
