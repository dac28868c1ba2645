"""Optional dependencies: a missing extra stops with one line naming it and `pip install ...[extra]`.

The base install is simulated here by blocking every optional module in the CLI's process
(``sys.modules[name] = None`` makes ``import name`` fail as if it were not installed); the real
base install is checked from a wheel in ``test_wheel.py``.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from computeops_grid import extras
from computeops_grid.backends import registry
from computeops_grid.errors import EXIT_CODES, ExitCode, ExtraMissing
from tests.conftest import ROOT, CliResult

# distribution (setup.cfg) -> top-level module it installs
DISTRIBUTIONS = {
    "requests": "requests",
    "cryptography": "cryptography",
    "diracx-client": "diracx",
    "DIRACCommon": "DIRACCommon",
    "zstandard": "zstandard",
    "htcondor": "htcondor",
    "docker": "docker",
    "kubernetes": "kubernetes",
    "spython": "spython",
    "matplotlib": "matplotlib",
    "rocrate": "rocrate",
}
NOT_FEATURES = {"all", "test"}


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def _extras() -> dict[str, list[str]]:
    section = _setup_cfg()["options.extras_require"]
    found = {}
    for extra, text in section.items():
        names = [re.split(r"[<>=!~\[ ;]", line.strip(), maxsplit=1)[0] for line in text.splitlines()]
        found[extra] = [n for n in names if n]
    return found


def test_every_optional_module_maps_to_an_extra_that_installs_it() -> None:
    declared = _extras()
    for extra, dists in declared.items():
        if extra in NOT_FEATURES:
            continue
        for dist in dists:
            module = DISTRIBUTIONS[dist]  # a new dependency: name its module here and in extras.MODULES
            assert module in extras.MODULES, (extra, dist)
            assert dist in declared[extras.MODULES[module]], (module, extras.MODULES[module])
    assert set(extras.MODULES.values()) <= set(declared) - NOT_FEATURES


def test_backend_entry_points_name_existing_extras() -> None:
    declared = _extras()
    lines = _setup_cfg()["options.entry_points"]["computeops_grid.backends"].strip().splitlines()
    named = {line.split("=")[0].strip(): re.findall(r"\[(\w+)\]", line) for line in lines}
    assert named["local"] == [] and named["slurm"] == []  # the base install runs them
    for backend in ("arc", "diracx", "dirac", "htcondor-ce", "swarm", "kubernetes"):
        assert len(named[backend]) == 1 and named[backend][0] in declared, backend


def test_missing_names_the_extra_and_the_command() -> None:
    error = extras.missing(ModuleNotFoundError("No module named 'spython'", name="spython"), "`x`")
    assert isinstance(error, ExtraMissing)
    assert error.exit_code == ExitCode.EXTRA_MISSING
    assert error.message == (
        "`x` needs the Python package 'spython', which is not installed: "
        "pip install 'computeops-grid[images]'"
    )
    assert "\n" not in error.message
    assert EXIT_CODES[ExitCode.EXTRA_MISSING].startswith("optional Python package not installed")
    # a module of the package itself missing is a broken installation, never an extra
    assert extras.missing(ModuleNotFoundError(name="computeops_grid.nope"), "`x`") is None


def test_registry_names_the_extra_of_the_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "needs_requests.py").write_text("import requests\nclass B: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "requests", None)  # as if not installed
    point = EntryPoint(name="fake", value="needs_requests:B [diracx]", group=registry.GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: {"fake": point})
    with pytest.raises(ExtraMissing) as info:
        registry.backend_class("fake")
    assert info.value.extra == "diracx"  # the entry point's extra, not the table's "grid"
    assert "backend 'fake' needs the Python package 'requests'" in info.value.message


# -- the CLI with every optional package blocked --------------------------------------------


def base_cli(home: Path, *args: str, blocked: tuple[str, ...] = tuple(extras.MODULES)) -> CliResult:
    code = (
        "import sys\n"
        "for name in sys.argv.pop(1).split(','):\n"
        "    sys.modules[name] = None\n"
        "from computeops_grid.cli.main import run\n"
        "run()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, ",".join(blocked), *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COPS_GRID_HOME": str(home), "COLUMNS": "200"},
    )  # fmt: skip
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _one_error_line(result: CliResult) -> str:
    assert "unexpected" not in result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_help_of_every_command_works_without_any_extra(cops_home: Path) -> None:
    top = base_cli(cops_home, "--help")
    assert top.code == 0, top.stderr
    commands = re.findall(r"^│ (\S+)\s", top.stdout, re.MULTILINE) or re.findall(
        r"^  (\S+)\s", top.stdout, re.MULTILINE
    )
    for group in ("pilot", "diracx", "image", "proxy", "bench", "validate-site"):
        assert group in commands, top.stdout
    for argv in (["diracx", "run-jobs"], ["bench", "runtimes"], ["image", "convert"], ["backends"]):
        result = base_cli(cops_home, *argv, "--help")
        assert result.code == 0, (argv, result.stderr)


def test_a_feature_without_its_extra_exits_72_naming_it(cops_home: Path, tmp_path: Path) -> None:
    # image convert no longer needs spython (the project converts recipes itself)
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM busybox:latest\nRUN echo hi\n")
    assert base_cli(cops_home, "image", "convert", str(dockerfile)).code == 0
    result = base_cli(cops_home, "diracx", "run-jobs", "--url", "https://localhost:1")
    assert result.code == 72
    assert "pip install 'computeops-grid[diracx]'" in _one_error_line(result)


def test_submit_to_a_backend_without_its_extra_exits_72(cops_home: Path) -> None:
    job = ROOT / "etc" / "examples" / "hello.yaml"
    result = base_cli(cops_home, "submit", str(job), "--backend", "arc", "--dry-run")
    assert result.code == 72
    # the first of the grid extra's packages that the ARC backend imports is named
    line = _one_error_line(result)
    module = line.split("'")[3]
    assert extras.MODULES[module] == "grid", line
    assert line == (
        f"Error: backend 'arc' needs the Python package '{module}', which is not installed: "
        "pip install 'computeops-grid[grid]'"
    )


def test_backends_shows_the_extra_of_each_backend_that_cannot_load(cops_home: Path) -> None:
    result = base_cli(cops_home, "backends", "--json")
    assert result.code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    wanted = {"arc": "grid", "diracx": "diracx", "dirac": "diracx", "swarm": "cloud", "kubernetes": "cloud"}
    for name, extra in wanted.items():
        assert f"pip install 'computeops-grid[{extra}]'" in rows[name]["detail"], rows[name]
        assert "failed to load" not in rows[name]["detail"]
    assert rows["local"]["reachable"] is True


def test_the_backends_table_keeps_the_brackets_of_the_extra(cops_home: Path) -> None:
    """On a terminal `cops-grid backends` prints a table: rich markup must not eat `[grid]`."""
    if shutil.which("script") is None:
        pytest.skip("script (util-linux) gives the CLI a terminal")
    code = "import sys\nsys.modules['requests'] = None\nfrom computeops_grid.cli.main import run\nrun()\n"
    command = shlex.join([sys.executable, "-c", code, "backends"])
    proc = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COPS_GRID_HOME": str(cops_home), "COLUMNS": "400"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    assert "pip install 'computeops-grid[grid]'" in proc.stdout
