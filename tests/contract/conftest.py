"""The backends the contract suite runs over: every one that can run on this machine.

Each entry maps a backend name to a fixture giving its settings (``backends.<name>:`` in
the configuration). Backends whose service cannot start here skip with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SettingsFactory = Callable[[Path], dict[str, Any]]
CONTRACT_BACKENDS = ["local", "slurm", "arc"]  # settings: `<name>_settings` fixtures (tests/conftest.py)


@pytest.fixture(params=CONTRACT_BACKENDS)
def contract_backend(request: pytest.FixtureRequest, cops_home: Path) -> str:
    """Configure ``cops_home`` for one backend and return its name."""
    name: str = request.param
    settings: dict[str, Any] = (
        {"max_parallel": 2} if name == "local" else request.getfixturevalue(f"{name}_settings")
    )
    config = cops_home / "config.yaml"
    import yaml

    data = yaml.safe_load(config.read_text())
    data.setdefault("backends", {})[name] = settings
    data["default_backend"] = name
    config.write_text(yaml.safe_dump(data))
    return name
