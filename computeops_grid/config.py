"""Where cops-grid keeps things, and its configuration file.

* ``COPS_GRID_HOME`` (default: the XDG data dir, ``~/.local/share/cops-grid``) holds the
  job store ``jobs.sqlite``, per-job directories ``jobs/`` and the local image
  repository ``images/`` (laid out like ``/cvmfs/unpacked.cern.ch``).
* The configuration is YAML: ``$COPS_GRID_CONFIG``, else ``$COPS_GRID_HOME/config.yaml``,
  else ``~/.config/cops-grid/config.yaml``; all optional (see ``etc/cops-grid.yaml``).

Where jobs run is named two ways: a backend *type* (``slurm``, ``arc``, ...) with its defaults
under ``backends.<type>:``, or a named *resource* under ``resources.<name>:`` with its ``type:``
and its own settings on top of that type's defaults, any number per type. The store records
the name a job was submitted to, so every later command reaches the same CE or cluster.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from computeops_grid.errors import ConfigError


def home_dir() -> Path:
    env = os.environ.get("COPS_GRID_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("cops-grid"))


RESOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Resource:
    """Where a job runs: a name (what the store records), a backend type, its settings."""

    name: str
    type: str
    settings: dict[str, Any]
    where: str  # the configuration section the settings come from, for error messages


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    default_backend: str = "local"
    image_root: Path | None = Field(default=None, description="unpacked image repository")
    backends: dict[str, dict[str, Any]] = Field(default_factory=dict)  # defaults per type
    resources: dict[str, dict[str, Any]] = Field(default_factory=dict)  # named, with `type:`
    source: str = Field(default="(built-in defaults)", exclude=True)

    @field_validator("backends", "resources", mode="before")
    @classmethod
    def _empty_sections(cls, value: Any) -> Any:
        """``slurm:`` with nothing under it (or only comments) means default settings."""
        if isinstance(value, dict):
            return {k: {} if v is None else v for k, v in value.items()}
        return value

    @field_validator("resources")
    @classmethod
    def _resource_names_and_types(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, body in value.items():
            if not RESOURCE_NAME.fullmatch(name):
                raise ValueError(f"resource name {name!r}: letters, digits, '.', '_', '-' (64 at most)")
            if not isinstance(body.get("type"), str):
                raise ValueError(f"resource {name!r} needs `type:` (a backend type, e.g. arc or slurm)")
        return value

    def resource(self, name: str) -> Resource:
        """The resource ``name``: a named one (configured, or kept by a campaign that defined
        it inline), else the type of that name with its defaults."""
        body = self.resources.get(name) or self._kept(name)
        if body is not None:
            rest = dict(body)
            kind = str(rest.pop("type"))
            settings = {**self.backends.get(kind, {}), **rest}
            return Resource(name, kind, settings, f"resources.{name}")
        return Resource(name, name, dict(self.backends.get(name, {})), f"backends.{name}")

    @property
    def kept_resources(self) -> Path:
        """Resources defined outside the configuration (a campaign's inline sites), one JSON
        file each, so that every later command reaches the jobs stored under their names."""
        return self.home / "resources.d"

    def _kept(self, name: str) -> dict[str, Any] | None:
        path = self.kept_resources / f"{name}.json"
        if not RESOURCE_NAME.fullmatch(name) or not path.is_file():
            return None
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the kept resource {path}: {exc}") from None
        return body if isinstance(body, dict) and isinstance(body.get("type"), str) else None

    def add_resource(self, name: str, body: dict[str, Any], *, keep: bool = False) -> None:
        """Register a resource defined elsewhere (a campaign's inline site) for this session,
        and with ``keep`` for later commands too (``status``, ``cancel``, ``get``)."""
        self.resources = self._resource_names_and_types({**self.resources, name: body})
        if keep:
            self.kept_resources.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = self.kept_resources / f"{name}.json"
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(body, sort_keys=True, default=str), encoding="utf-8")
            tmp.chmod(0o600)
            tmp.replace(path)

    _home: Path | None = PrivateAttr(default=None)

    @property
    def home(self) -> Path:
        """``COPS_GRID_HOME`` as it was when first asked, or the home given to :func:`load_config`."""
        if self._home is None:
            self._home = home_dir()
        return self._home

    @property
    def store_path(self) -> Path:
        return self.home / "jobs.sqlite"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def images(self) -> Path:
        return self.image_root or self.home / "images"


def config_path(home: Path | None = None) -> Path | None:
    """The configuration file; with ``home`` given (a Python client's own), only
    ``home/config.yaml``: the environment is not read."""
    if home is not None:
        own = home / "config.yaml"
        return own if own.is_file() else None
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


def load_config(path: Path | None = None, *, home: Path | None = None) -> Config:
    """The configuration from ``path`` (default: :func:`config_path`); ``home`` pins the data
    directory instead of ``COPS_GRID_HOME`` (two clients in one process, each its own)."""
    config = _read_config(path or config_path(home))
    if home is not None:
        config._home = home
    return config


def _read_config(path: Path | None) -> Config:
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
