"""cops-grid installed as users install it: from its wheel, into fresh virtual environments.

``python -m build`` makes the sdist and then the wheel from that sdist (a file missing from
either fails here); each environment lives outside the checkout and every command runs from
another directory with no source tree on ``sys.path``:

* ``base``: the wheel alone. ``--help`` of every command and sub-command works, a feature
  whose extra is absent says which one (exit 72), ``cops-grid backends`` names each extra.
* ``full``: ``computeops-grid[all]``, as the README's user section installs it. The README's
  first job on the local backend (an empty data directory: the embedded image is built on the
  way), ``validate-site local``, ``bench runtimes --quick`` with two runtimes, ``pilot
  --list-runtimes``, ``image convert`` of a Dockerfile, ``image publish`` of an OCI layout.

The build and both environments are made once per module (about 1.5 min on 2 cores, most of it
pip installing the ``all`` extra; pip reaches PyPI, pinned by etc/deps/constraints.txt).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, CliResult
from tests.images.helpers import member, oci_layout

pytestmark = pytest.mark.slow

CONSTRAINTS = ROOT / "etc" / "deps" / "constraints.txt"
PACKAGE = ROOT / "computeops_grid"
# what a user's shell has; nothing of the checkout, the developers' interpreter or its variables
KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME", "TERM")
PIP_ENV = ("PIP_CERT", "PIP_FIND_LINKS", "PIP_DEFAULT_TIMEOUT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


@dataclass
class Venv:
    root: Path
    cwd: Path  # a directory outside the checkout

    def env(self, home: Path) -> dict[str, str]:
        env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
        env["PATH"] = f"{self.root / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        return {**env, "COPS_GRID_HOME": str(home), "COLUMNS": "200", "VIRTUAL_ENV": str(self.root)}

    def cops(self, *args: str, home: Path | None = None, timeout: float = 120) -> CliResult:
        home = home or self.cwd / "home"
        proc = subprocess.run(
            [str(self.root / "bin" / "cops-grid"), *args],
            capture_output=True, text=True, timeout=timeout, cwd=self.cwd, env=self.env(home), check=False,
        )  # fmt: skip
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    def python(self, code: str) -> str:
        proc = subprocess.run(
            [str(self.root / "bin" / "python"), "-c", code],
            capture_output=True, text=True, timeout=60, cwd=self.cwd, env=self.env(self.cwd / "home"),
            check=True,
        )  # fmt: skip
        return proc.stdout.strip()


def _run(argv: list[str], timeout: float, **kwargs: object) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], timeout=600)
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return Dist(wheel, sdist)


def _venv(base: Path, requirement: str) -> Iterator[Venv]:
    root = base / "venv"
    _run([sys.executable, "-m", "venv", str(root)], timeout=120)
    env = {k: os.environ[k] for k in (*KEEP_ENV, *PIP_ENV) if k in os.environ}
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, "-c", str(CONSTRAINTS), requirement], timeout=900, env=env, cwd=base)
    cwd = base / "elsewhere"
    cwd.mkdir()
    yield Venv(root, cwd)
    shutil.rmtree(base, ignore_errors=True)  # ~400 MiB with [all]: pytest keeps its last 3 temp trees


@pytest.fixture(scope="module")
def base(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    yield from _venv(tmp_path_factory.mktemp("base"), str(dist.wheel))


@pytest.fixture(scope="module")
def full(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    yield from _venv(tmp_path_factory.mktemp("full"), f"{dist.wheel}[all]")


# -- what is inside ----------------------------------------------------------------------------


def _sources() -> set[str]:
    """Every file the package needs at run time: modules, worker-side files, the study's C."""
    return {
        str(p.relative_to(ROOT))
        for p in PACKAGE.rglob("*")
        if p.suffix in (".py", ".c") and "__pycache__" not in p.parts
    }


def test_wheel_and_sdist_hold_every_file_of_the_package(dist: Dist) -> None:
    in_wheel = set(zipfile.ZipFile(dist.wheel).namelist())
    assert _sources() - in_wheel == set()
    for needed in (
        "computeops_grid/worker/cops_pilot.py",
        "computeops_grid/worker/run_probes.py",
        "computeops_grid/worker/cops_dirac_launch.py",
        "computeops_grid/worker/probes/probelib.py",
        "computeops_grid/bench/kernel.c",
        "computeops_grid/bench/gpu.c",
        "computeops_grid/py.typed",  # the Python API is typed for its users' type checkers
    ):
        assert needed in in_wheel
    with tarfile.open(dist.sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert _sources() - in_sdist == set()
    assert {
        "README.md",
        "setup.cfg",
        "pyproject.toml",
        "etc/pilot.conf",
        "etc/examples/hello.yaml",
        "examples/cops-grid.ipynb",
    } <= in_sdist
    assert top.startswith("computeops_grid-")
    entry_points = zipfile.ZipFile(dist.wheel).read(f"{top}.dist-info/entry_points.txt")
    assert b"ArcBackend [grid]" in entry_points  # backends name their extra


# -- the wheel alone ---------------------------------------------------------------------------


def _commands(help_text: str) -> list[str]:
    """The sub-commands listed under "Commands:" in a --help page."""
    block = help_text.split("Commands:\n", 1)[1].split("\n\n", 1)[0] if "Commands:" in help_text else ""
    return re.findall(r"^  (\S+)", block, re.MULTILINE)


def test_base_install_runs_from_the_wheel_not_the_checkout(base: Venv) -> None:
    where = base.python("import computeops_grid, sys; print(computeops_grid.__file__)")
    assert where.startswith(str(base.root)), where
    assert str(ROOT) not in base.python("import sys; print(sys.path)")


def test_base_install_help_of_every_command_and_sub_command(base: Venv) -> None:
    top = base.cops("--help")
    assert top.code == 0, top.stderr
    commands = _commands(top.stdout)
    assert {"submit", "backends", "pilot", "diracx", "image", "bench", "validate-site", "proxy"} <= set(
        commands
    )
    pages = 0
    todo = [[c] for c in commands]
    while todo:
        argv = todo.pop()
        result = base.cops(*argv, "--help")
        assert result.code == 0, (argv, result.stdout, result.stderr)
        assert "Error" not in result.stderr, (argv, result.stderr)
        assert "usage:" in result.stdout.lower(), argv  # the wrapper's own page is argparse's
        pages += 1
        todo += [[*argv, sub] for sub in _commands(result.stdout)]
    assert pages > 20


def test_base_install_names_the_missing_extras(base: Venv) -> None:
    (base.cwd / "Dockerfile").write_text("FROM busybox:latest\nRUN echo hi\n")
    convert = base.cops("image", "convert", "Dockerfile")  # the project's own converter: no extra
    assert convert.code == 0, convert.stderr
    wishlist = base.cwd / "wishlist.yaml"
    wishlist.write_text("version: 1\ninput:\n  - https://registry.example.org/library/busybox:latest\n")
    sync = base.cops("image", "sync", str(wishlist), "--repo-root", str(base.cwd / "repo"), "--dry-run")
    assert sync.code == 72, sync.stderr  # a registry client needs requests
    assert "pip install 'computeops-grid[images]'" in sync.stderr
    assert "unexpected" not in sync.stderr
    rows = json.loads(base.cops("backends", "--json").stdout)
    details = {row["name"]: row["detail"] for row in rows}
    for name, extra in {"arc": "grid", "diracx": "diracx", "dirac": "diracx", "swarm": "cloud"}.items():
        assert f"pip install 'computeops-grid[{extra}]'" in details[name], details[name]


# -- computeops-grid[all]: the README's user section -------------------------------------------


def _readme_first_job() -> str:
    """The job file of the README's user section (a here-document)."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"cat > hello\.yaml <<'EOF'\n(.*?)\n *EOF\n", text, re.DOTALL)
    assert found, "the README's user section writes hello.yaml with a here-document"
    return "\n".join(line.removeprefix("    ") for line in found.group(1).splitlines()) + "\n"


def test_the_readmes_first_job_runs_right_after_install(full: Venv) -> None:
    home = full.cwd / "first-run"  # empty: no configuration, no image repository
    (full.cwd / "hello.yaml").write_text(_readme_first_job())
    result = full.cops("submit", "hello.yaml", "--wait", home=home, timeout=300)
    assert result.code == 0, result.stderr
    assert "Hello from Linux in a container" in result.stdout
    (job,) = json.loads(full.cops("list", "--json", home=home).stdout)
    report = json.loads((home / "jobs" / "local" / job["id"] / "work" / "cops-report.json").read_text())
    assert report["runtime"] in {a["name"] for a in report["attempts"] if a["status"] == "ok"}
    assert report["why"].startswith(f"{report['runtime']}: the first runtime of the built-in default order")
    working = [a["name"] for a in report["attempts"] if a["status"] == "ok"]
    assert report["runtime"] != "udocker" or working == ["udocker"]


def test_validate_site_local_finds_its_probes(full: Venv) -> None:
    result = full.cops("validate-site", "local", "--json", timeout=300)
    assert result.code in (0, 1, 2), result.stderr  # the Nagios state of this machine
    probes = {p["name"]: p for p in json.loads(result.stdout)["probes"]}
    assert {"cvmfs", "runtime", "userns", "scratch", "cpu", "memory", "gpu", "credentials"} <= set(probes)
    assert probes["cpu"]["status"] == "OK"


def test_bench_runtimes_quick_with_two_runtimes(full: Venv) -> None:
    out = full.cwd / "bench"
    result = full.cops(
        "bench", "runtimes", "--quick", "--runtimes", "charliecloud,bubblewrap", "--no-features",
        "--out", str(out), timeout=600,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    rows = {(r["workload"], r["system"]): r for r in summary["rows"]}
    assert rows[("cpu-scalar", "bare-metal")]["n_ok"] == 5  # the study's C kernel, built from the wheel
    assert (out / "report.html").exists() and (out / "overhead.png").exists()  # matplotlib: the bench extra


def test_pilot_list_runtimes(full: Venv) -> None:
    result = full.cops("pilot", "--list-runtimes")
    assert result.code == 0, result.stderr
    assert "a job here runs with:" in result.stdout
    assert "built-in default order" in result.stdout


def test_image_convert_a_dockerfile(full: Venv) -> None:
    (full.cwd / "Dockerfile").write_text('FROM busybox:latest\nRUN echo built > /etc/marker\nCMD ["sh"]\n')
    result = full.cops("image", "convert", "Dockerfile")
    assert result.code == 0, result.stderr
    assert "Bootstrap: docker" in result.stdout
    assert "From: busybox:latest" in result.stdout


def test_image_publish_a_small_oci_layout(full: Venv) -> None:
    layout = oci_layout(
        full.cwd / "oci",
        [[member("etc/", tarfile.DIRTYPE, mode=0o755), member("etc/hello.txt", data=b"hi\n")]],
    )
    repo = full.cwd / "repo"
    result = full.cops(
        "image", "publish", f"oci:{layout}", "--name", "docker://example.org/tiny:1",
        "--repo-root", str(repo), "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    (published,) = json.loads(result.stdout)
    assert published["path"] == "example.org/tiny:1"
    assert (repo / "example.org" / "tiny:1" / "etc" / "hello.txt").read_text() == "hi\n"
