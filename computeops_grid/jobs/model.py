"""The job description users write (YAML), validated with pydantic at the edge.

One file holds one job, a ``jobs:`` list, or several YAML documents. A job with
``parameters`` is parametric: it expands into one job per combination of values (a mapping
of lists or ranges), or one job per row (a list of mappings, values that go together, as
HTCondor's ``queue a,b from`` and DIRAC's ``Parameters.a``/``Parameters.b`` give them),
substituted as ``${name}`` (and ``${index}``) in name, arguments, environment, inputs and
outputs (``$$`` is a literal ``$`` there).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from computeops_grid.jobs import storage

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
# before parametric expansion a name may hold ${param} placeholders
TEMPLATE_NAME_RE = r"^[A-Za-z0-9$][A-Za-z0-9._${}-]{0,99}$"
_MEM_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_MEM_UNITS = {"": 1, "B": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_WALL_RE = re.compile(r"^(?:(\d+)-)?(\d+):(\d{2})(?::(\d{2}))?$")
RUNTIMES = (
    "apptainer",
    "singularity",
    "udocker",
    "podman",
    "charliecloud",
    "bubblewrap",
    "runc",
    "proot",
    "docker",
)


def parse_memory(value: int | str) -> int:
    """``"2GiB"``, ``"512M"``, ``1024`` (MiB when a bare int) -> bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 2GiB or 512MB")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("must be greater than 0")
        return value * 2**20
    match = _MEM_RE.match(value)
    if not match:
        raise ValueError(f"expected a size like 2GiB or 512MB, got {value!r}")
    number, unit = float(match.group(1)), (match.group(2) or "").upper()
    binary = "I" in unit
    base = unit[:1]
    factor = 2 ** (10 * "BKMGT".index(base)) if binary and base else _MEM_UNITS[base]
    size = int(number * factor)
    if size <= 0:
        raise ValueError("must be greater than 0")
    return size


def parse_walltime(value: int | str) -> int:
    """``"D-HH:MM:SS"``, ``"HH:MM:SS"``, ``"HH:MM"`` or minutes as int -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected HH:MM[:SS] or minutes")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("must be greater than 0")
        return value * 60
    match = _WALL_RE.match(value.strip())
    if not match:
        raise ValueError(f"expected [D-]HH:MM[:SS] or minutes, got {value!r}")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    if minutes > 59 or seconds > 59:
        raise ValueError(f"minutes and seconds must be below 60 in {value!r}")
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise ValueError("must be greater than 0")
    return total


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Strict):
    cores: Annotated[int, Field(ge=1, le=4096)] = 1
    memory: int = Field(default=2 * 2**30, description="bytes; written as 2GiB, 512MB, or MiB as int")
    walltime: int = Field(default=3600, description="seconds; written as HH:MM[:SS] or minutes")
    gpus: Annotated[int, Field(ge=0, le=64)] = 0

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> int:
        if not isinstance(value, (int, str)):
            raise ValueError("expected a size like 2GiB or 512MB")
        return parse_memory(value)

    @field_serializer("memory")
    def _memory_out(self, value: int) -> str:
        return f"{value}B"  # round-trips: a bare int would read back as MiB

    @field_serializer("walltime")
    def _walltime_out(self, value: int) -> str:
        return f"{value // 3600}:{value // 60 % 60:02d}:{value % 60:02d}"

    @field_validator("walltime", mode="before")
    @classmethod
    def _walltime(cls, value: Any) -> int:
        if not isinstance(value, (int, str)):
            raise ValueError("expected [D-]HH:MM[:SS] or minutes")
        return parse_walltime(value)


class RangeSpec(_Strict):
    start: int
    stop: int = Field(description="inclusive")
    step: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _order(self) -> RangeSpec:
        if self.stop < self.start:
            raise ValueError("stop must not be smaller than start")
        if (self.stop - self.start) // self.step + 1 > 100_000:
            raise ValueError("a range may expand to at most 100000 values")
        return self

    def values(self) -> list[str]:
        return [str(v) for v in range(self.start, self.stop + 1, self.step)]


Scalar = Union[str, int, float]
ParameterValues = Union[Annotated[list[Scalar], Field(min_length=1)], RangeSpec]
ParameterRows = Annotated[list[dict[str, Scalar]], Field(min_length=1, max_length=100_000)]


class StageIn(_Strict):
    """An input fetched from grid storage onto the node: ``url`` placed as ``name`` in the job's directory."""

    url: str = Field(description="root://, davs://, https:// or s3:// URL")
    name: str = Field(
        default="", description="file name in the job's directory (default: the URL's base name)"
    )

    @field_validator("url")
    @classmethod
    def _storage_url(cls, value: str) -> str:
        return storage.check_url(value)

    @model_validator(mode="after")
    def _base_name(self) -> StageIn:
        name = storage.input_name(self.url, self.name)
        if name != self.name:
            object.__setattr__(self, "name", name)  # frozen model: the default, filled once here
        return self


class StageOut(_Strict):
    """An output stored on grid storage after the payload, checked by checksum (and kept in the sandbox)."""

    path: str = Field(min_length=1, description="file or glob in the job's directory")
    to: str = Field(description="destination URL; ending in / it is a directory for every match")

    @field_validator("to")
    @classmethod
    def _storage_url(cls, value: str) -> str:
        return storage.check_url(value)

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/") or "\x00" in value:
            raise ValueError(f"output {value!r} must be a relative path inside the job directory")
        return value


class JobSpec(_Strict):
    """One job (before parametric expansion)."""

    name: str = Field(pattern=TEMPLATE_NAME_RE, description="letters, digits, . _ - ; may use ${param}")
    image: str = Field(min_length=1, description="docker://repo:tag, a rootfs directory, or a .sif file")
    command: str = Field(min_length=1, description="executable run inside the container (no shell)")
    arguments: list[str] = Field(default_factory=list)
    environment: dict[str, str] = Field(default_factory=dict)
    inputs: list[str] = Field(default_factory=list, description="files copied into the job's work dir")
    outputs: list[str] = Field(default_factory=list, description="globs collected by `cops-grid get`")
    resources: Resources = Field(default_factory=Resources)
    runtimes: list[Literal[RUNTIMES]] = Field(  # type: ignore[valid-type]
        default_factory=list, description="runtime preference list for the pilot wrapper"
    )
    backend: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
    )  # resource or type
    backend_options: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, ParameterValues] | ParameterRows = Field(
        default_factory=dict, description="{name: values or range} (each combination) or [{name: value}] rows"
    )
    stage_in: list[StageIn] = Field(default_factory=list, description="inputs: entries that are storage URLs")
    stage_out: list[StageOut] = Field(default_factory=list, description="outputs: entries with a `to:` URL")

    @model_validator(mode="before")
    @classmethod
    def _storage_entries(cls, data: Any) -> Any:
        """``inputs:`` URLs and ``outputs: {path, to}`` become ``stage_in``/``stage_out``."""
        return storage.split_entries(data)

    @field_validator("arguments", mode="before")
    @classmethod
    def _args_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in value]
        return value

    @field_validator("environment", mode="before")
    @classmethod
    def _env_as_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                for k, v in value.items()
            }
        return value

    @field_validator("environment")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
        return value

    @field_validator("inputs", "outputs", mode="before")
    @classmethod
    def _storage_explained(cls, value: Any, info: ValidationInfo) -> Any:
        return storage.explain_entries(str(info.field_name), value)

    @field_validator("inputs", "outputs")
    @classmethod
    def _relative_paths(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item or "\x00" in item:
                raise ValueError("paths must be non-empty")
        return value

    @field_validator("outputs")
    @classmethod
    def _outputs_inside(cls, value: list[str]) -> list[str]:
        for item in value:
            if item.startswith("/") or ".." in item.split("/"):
                raise ValueError(f"output {item!r} must be a relative path inside the job directory")
        return value

    @field_validator("parameters")
    @classmethod
    def _param_names(cls, value: dict[str, Any] | list[dict[str, Any]]) -> Any:
        rows = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not rows[0]:
            raise ValueError("a row of parameters must name at least one parameter")
        for key in rows[0]:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key) or key == "index":
                raise ValueError(f"{key!r} is not a usable parameter name (letters, digits, _; not 'index')")
        for number, row in enumerate(rows[1:], start=2):
            if list(row) != list(rows[0]):
                raise ValueError(f"row {number} names {sorted(row)}, the first row {sorted(rows[0])}")
        return value
