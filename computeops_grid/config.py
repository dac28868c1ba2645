"""Where cops-grid keeps things, and its configuration file.

* ``COPS_GRID_HOME`` (default: the XDG data dir, ``~/.local/share/cops-grid``) holds the
  job store ``jobs.sqlite``, per-job directories ``jobs/`` and the local image
  repository ``images/`` (laid out like ``/cvmfs/unpacked.cern.ch``).
* The configuration is YAML: ``$COPS_GRID_CONFIG``, else ``$COPS_GRID_HOME/config.yaml``,
  else ``~/.config/cops-grid/config.yaml``; all optional (see ``etc/cops-grid.yaml``).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

import platformdirs
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from computeops_grid.errors import ConfigError


def home_dir() -> Path:
    env = os.environ.get("COPS_GRID_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("cops-grid"))


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    default_backend: str = "local"
    image_root: Path | None = Field(default=None, description="unpacked image repository")
    backends: dict[str, dict[str, Any]] = Field(default_factory=dict)
    source: str = Field(default="(built-in defaults)", exclude=True)

    @field_validator("backends", mode="before")
    @classmethod
    def _empty_sections(cls, value: Any) -> Any:
        """``slurm:`` with nothing under it (or only comments) means default settings."""
        if isinstance(value, dict):
            return {k: {} if v is None else v for k, v in value.items()}
        return value

    @cached_property
    def home(self) -> Path:
        return home_dir()

    @property
    def store_path(self) -> Path:
        return self.home / "jobs.sqlite"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def images(self) -> Path:
        return self.image_root or self.home / "images"


def config_path() -> Path | None:
    env = os.environ.get("COPS_GRID_CONFIG")
    if env:
        return Path(env)
    for candidate in (
        home_dir() / "config.yaml",
        Path(platformdirs.user_config_dir("cops-grid")) / "config.yaml",
    ):
        if candidate.is_file():
            return candidate
    return None


def load_config() -> Config:
    path = config_path()
    if path is None:
        return Config()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a mapping")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path}: {field}: {err['msg']}", hint="see etc/cops-grid.yaml") from None
    config.source = str(path)
    return config
