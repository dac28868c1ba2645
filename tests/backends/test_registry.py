"""Backends as packages behind narrow protocols: declared abilities are what they implement."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from computeops_grid.backends.base import Capability, undeclared_abilities
from computeops_grid.backends.registry import backend_class, known_backends
from computeops_grid.jobs.record import JobRecord
from tests.conftest import EXAMPLES, Cli


class _Bare:
    """The core protocol only."""

    name: ClassVar[str] = "bare"


class _Liar(_Bare):
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.OUTPUTS, Capability.CANCEL})

    def cancel(self, jobs: Sequence[JobRecord]) -> None: ...


def test_a_capability_without_its_protocol_is_refused() -> None:
    problems = undeclared_abilities(_Liar(), _Liar.capabilities)
    assert problems == ["lacks SupportsOutputs but declares 'outputs'"]


def test_a_protocol_without_its_capability_is_refused() -> None:
    assert undeclared_abilities(_Liar(), frozenset()) == [
        "implements SupportsCancel but does not declare 'cancel'"
    ]


@pytest.mark.parametrize("name", known_backends())
def test_every_registered_backend_declares_exactly_what_it_implements(name: str) -> None:
    try:
        cls = backend_class(name)
    except Exception as exc:  # an optional extra that is not installed
        pytest.skip(f"{name}: {exc}")
    instance = cls.__new__(cls)  # no settings needed to see which methods exist
    assert undeclared_abilities(instance, cls.capabilities) == []


def test_each_family_is_a_package_registered_by_entry_point() -> None:
    families = {backend_class(n).__module__.split(".")[2] for n in known_backends() if n != "spool"}
    assert families == {"local", "slurm", "arc", "dirac", "htcondor_ce", "swarm", "kubernetes"}


def test_the_legacy_dirac_backend_does_not_import_diracx_code() -> None:
    probe = (
        "import sys, computeops_grid.backends.dirac.legacy as m; "
        "print(sorted(k for k in sys.modules if k.startswith('computeops_grid.backends.dirac.')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "diracx" not in out, out
    assert "computeops_grid.backends.dirac.legacy" in out


def test_get_on_a_backend_without_outputs_says_so(cli: Cli, tmp_path: Path) -> None:
    if "spool" not in known_backends():
        pytest.skip("pip install -e tests/plugins")
    text = (cli.home / "config.yaml").read_text()
    (cli.home / "config.yaml").write_text(text + f"  spool:\n    spool: {tmp_path / 'spool'}\n")
    submitted = cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "spool")
    assert submitted.code == 0, submitted.stderr
    job_id = submitted.stdout.split()[0]
    result = cli("get", job_id, "-o", str(tmp_path / "out"))
    assert result.code == 2
    assert "backend spool cannot return output files" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
