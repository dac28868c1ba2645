"""The campaign file (``campaign.yaml``): sites to validate, images, thresholds.

Validated with pydantic at the edge; errors name the file, line and field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from computeops_grid.config import Config
from computeops_grid.errors import ConfigError

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
LEVELS = ("x86-64-v1", "x86-64-v2", "x86-64-v3", "x86-64-v4")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(_Strict):
    """A site names a configured resource (``backend: cern-arc``, or a type with its defaults),
    or defines its own inline: ``type:`` and that type's settings beside the site's keys
    (``{name: x, type: arc, ce: host, queue: q}``), so a campaign of hundreds of CEs needs no
    configuration block for each."""

    name: str = Field(pattern=NAME_RE)
    backend: str | None = Field(default=None, pattern=NAME_RE, description="configured resource or type")
    type: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]*$", description="inline: backend type")
    settings: dict[str, Any] = Field(default_factory=dict, description="inline: the type's settings")
    endpoint: str = Field(default="", description="CE host or cluster (informational, backend-dependent)")
    queue: str = Field(default="", description="queue / partition, passed as backend option 'queue'")
    options: dict[str, Any] = Field(default_factory=dict, description="extra backend options")
    cvmfs_root: str = Field(default="/cvmfs", description="where the site mounts CVMFS")
    image_root: str | None = Field(default=None, description="image repository the wrapper uses")
    environment: dict[str, str] = Field(
        default_factory=dict, description="variables of the validation job on this site (e.g. PATH)"
    )

    @model_validator(mode="before")
    @classmethod
    def _inline_settings(cls, data: Any) -> Any:
        """With ``type:``, the keys that are not the site's own are the resource's settings."""
        if isinstance(data, dict) and "type" in data:
            own = {k: v for k, v in data.items() if k in cls.model_fields}
            extra = {k: v for k, v in data.items() if k not in cls.model_fields}
            return {**own, "settings": {**own.get("settings", {}), **extra}}
        return data

    @model_validator(mode="after")
    def _one_way_to_name_the_resource(self) -> Site:
        if (self.backend is None) == (self.type is None):
            raise ValueError("give either `backend:` (a configured resource) or `type:` with its settings")
        return self

    @field_validator("environment")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in env if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k))
        if bad:
            raise ValueError(f"not environment variable names: {', '.join(bad)}")
        return env


class Image(_Strict):
    ref: str = Field(min_length=1, description="docker://repo:tag or a rootfs path")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    file: str = Field(default="/bin/sh", description="file inside the image whose sha256 is compared")


class Thresholds(_Strict):
    cvmfs_latency_warn: float = Field(default=1.0, gt=0, description="seconds")
    cvmfs_latency_crit: float = Field(default=5.0, gt=0)
    scratch_free_warn: float = Field(default=10.0, ge=0, description="GiB")
    scratch_free_crit: float = Field(default=1.0, ge=0)
    scratch_write_warn: float = Field(default=20.0, ge=0, description="MiB/s")
    scratch_write_crit: float = Field(default=2.0, ge=0)
    scratch_test_size: int = Field(default=64, ge=0, description="MiB written by the write test")
    mem_per_core_warn: float = Field(default=2.0, ge=0, description="GiB")
    mem_per_core_crit: float = Field(default=1.0, ge=0)
    min_cores: int = Field(default=1, ge=1)
    cpu_level_required: Literal[LEVELS] | None = None  # type: ignore[valid-type]
    cpu_level_wanted: Literal[LEVELS] | None = None  # type: ignore[valid-type]
    userns_max_warn: int = Field(default=1000, ge=0)
    credential_hours_warn: float = Field(default=24.0, ge=0)
    credential_hours_crit: float = Field(default=1.0, ge=0)
    image_time_warn: float = Field(default=60.0, gt=0, description="seconds")
    image_time_crit: float = Field(default=300.0, gt=0)


class Campaign(_Strict):
    name: str = Field(pattern=NAME_RE)
    sites: list[Site] = Field(min_length=1)
    images: list[Image] = Field(default_factory=list)
    repositories: list[str] = Field(default_factory=lambda: ["unpacked.cern.ch"])
    thresholds: Thresholds = Field(default_factory=Thresholds)
    runtimes: list[str] = Field(default_factory=list, description="runtimes the VO prefers")
    credentials: Literal["any", "proxy", "token", "none"] = "none"
    vo: str | None = None
    gpus: int = Field(default=0, ge=0)
    probes: list[str] | None = Field(default=None, description="subset of probes to run (default all)")
    walltime: int = Field(default=1800, ge=60, description="seconds the validation job may run")

    @field_validator("sites")
    @classmethod
    def _unique(cls, sites: list[Site]) -> list[Site]:
        names = [s.name for s in sites]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"site names must be unique: {', '.join(dupes)} repeated")
        return sites

    @field_validator("repositories")
    @classmethod
    def _repos(cls, repos: list[str]) -> list[str]:
        for repo in repos:
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", repo):
                raise ValueError(f"{repo!r} is not a CVMFS repository name")
        return repos

    def resource_of(self, site: Site) -> str:
        """The resource name the site's job is stored under (inline ones: ``campaign.site``)."""
        return site.backend or f"{self.name}.{site.name}"

    def register(self, config: Config) -> None:
        """Make the inline sites' resources known to ``config``, and kept in the data directory
        so that ``cops-grid status``/``cancel``/``get`` reach their jobs outside a campaign."""
        for site in self.sites:
            if site.type is not None:
                config.add_resource(self.resource_of(site), {"type": site.type, **site.settings}, keep=True)

    def site(self, name: str) -> Site:
        for site in self.sites:
            if site.name == name:
                return site
        raise ConfigError(f"campaign {self.name} has no site {name!r}", hint="see `validate-site status`")


def _line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Best-effort line of the first key named in ``loc`` (for error messages)."""
    for key in reversed([k for k in loc if isinstance(k, str)]):
        match = re.search(rf"^\s*-?\s*{re.escape(key)}\s*:", text, re.MULTILINE)
        if match:
            return text.count("\n", 0, match.start()) + 1
    return None


def load_campaign(path: Path) -> Campaign:
    """Read and validate a campaign file; every problem is one ConfigError naming the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read campaign file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with name, sites, images, thresholds")
    try:
        return Campaign.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        line = _line_of(text, tuple(err["loc"]))
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(
            f"{where}: {field}: {err['msg']}", hint="see site-validation/campaigns/example.yaml"
        ) from None
