"""What every reader of a native description shares: the job as read, notes, site options.

A reader turns one file into groups of :class:`Draft` jobs (a group is what one parametric
statement or one description makes: a JDL with ``Parameters``, one HTCondor ``queue``) and a
list of :class:`Note` for every attribute the job model cannot express. It never drops one
silently: each attribute is mapped, kept as a backend option for the backends that understand
it (:meth:`Context.keep`), or named in a note with its line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from computeops_grid.errors import JobFileError

NAME_BAD = re.compile(r"[^A-Za-z0-9._-]+")
DIRAC_BACKENDS = frozenset({"diracx", "dirac"})
ARC_BACKENDS = frozenset({"arc"})


@dataclass(frozen=True)
class Note:
    """An attribute the job model does not carry as written, and what became of it."""

    attribute: str
    line: int | None
    message: str

    def text(self, path: str) -> str:
        where = f"{path}:{self.line}" if self.line is not None else path
        return f"{where}: {self.attribute}: {self.message}"


@dataclass(frozen=True)
class ReadOptions:
    """``image``: for descriptions that name none (``host:`` runs them uncontained, as asked);
    ``target``: the backend type the jobs go to (site options are kept only for it; ``None``
    keeps every one, for ``convert --to yaml``)."""

    image: str | None = None
    target: str | None = None


@dataclass
class Draft:
    """One concrete job as a native description gives it (before the model validates it)."""

    name: str
    command: str
    image: str | None = None
    arguments: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    cores: int | None = None
    memory: int | None = None  # bytes
    walltime: int | None = None  # seconds
    gpus: int | None = None
    runtimes: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    # model field -> (native attribute, line), so that a validation error names the file's own words
    origin: dict[str, tuple[str, int | None]] = field(default_factory=dict)


@dataclass
class Group:
    """The jobs of one description or parametric statement; ``hints`` are each job's own
    variables (HTCondor item variables, DIRAC parameter sequences) for folding them back."""

    drafts: list[Draft]
    hints: list[dict[str, str]]
    line: int | None = None
    ours: bool = False  # written by cops-grid (the wrapper's command line): one bulk per file


@dataclass
class Context:
    """One file being read: where notes go and how errors name the place."""

    path: str
    text: str
    options: ReadOptions
    notes: list[Note] = field(default_factory=list)

    def note(self, attribute: str, line: int | None, message: str) -> None:
        note = Note(attribute, line, message)
        if note not in self.notes:
            self.notes.append(note)

    def ignore(self, attribute: str, line: int | None, why: str = "") -> None:
        self.note(attribute, line, "ignored: " + (why or "the job model has no place for it"))

    def error(
        self, message: str, line: int | None = None, attribute: str = "", hint: str | None = None
    ) -> JobFileError:
        return JobFileError(message, path=self.path, line=line, field=attribute, hint=hint)

    def keep(
        self,
        draft: Draft,
        attribute: str,
        line: int | None,
        option: tuple[str, Any],
        backends: frozenset[str],
    ) -> None:
        """A site-specific attribute: a backend option where the target backend understands it."""
        key, value = option
        label = "/".join(sorted(backends))
        target = self.options.target
        if target is None:
            draft.options[key] = value
            self.note(attribute, line, f"kept as backend_options.{key} (only {label} backends use it)")
        elif target in backends:
            draft.options[key] = value
        else:
            self.ignore(attribute, line, f"site-specific, understood by {label} backends only (not {target})")

    @property
    def stem(self) -> str:
        return Path(self.path).stem


def line_of(text: str, pattern: str, start: int = 0) -> int | None:
    """The line (1-based) of the first match of ``pattern`` (multiline, any case) at or after ``start``."""
    match = re.compile(pattern, re.IGNORECASE | re.MULTILINE).search(text, start)
    return text.count("\n", 0, match.start()) + 1 if match else None


def job_name(raw: str, ctx: Context, attribute: str, line: int | None) -> str:
    """A valid job name from a native one (letters, digits, . _ -), noting any change."""
    name = NAME_BAD.sub("-", raw.strip()).strip("-._")[:100] or ctx.stem
    name = NAME_BAD.sub("-", name).strip("-._") or "job"
    if name != raw:
        ctx.note(attribute, line, f"job name {raw!r} read as {name!r} (letters, digits, . _ - only)")
    return name


def is_url(value: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value)) and not value.startswith("file://")


def local_path(value: str) -> str:
    return value.removeprefix("file://")


def per_core_memory(megabytes: float, cores: int | None) -> int:
    """ARC's and DIRAC's memory is per slot, in MB: the job's total in bytes."""
    return max(1, math.ceil(megabytes * (cores or 1))) * 2**20


def shipped(executable: str, inputs: list[str]) -> list[str]:
    """The inputs with a relative executable among them (ARC sends it with the job by itself)."""
    if executable.startswith("/") or any(Path(i).name == Path(executable).name for i in inputs):
        return inputs
    return [*inputs, executable]


def command_for(executable: str, inputs: list[str]) -> tuple[str, list[str]]:
    """The command of a job whose executable is a file shipped with it (``./name`` in the job's
    directory, and an input), or a program found on the node (kept as written)."""
    if executable.startswith("/") and executable not in inputs:
        return executable, inputs
    name = Path(executable).name
    shipped = [i for i in inputs if Path(i).name == name]
    if not shipped and "/" not in executable:
        return executable, inputs  # `ls`, `python3`: on the node's (the image's) PATH
    return f"./{name}", inputs if shipped else [*inputs, executable]


def directory_glob(name: str, ctx: Context, attribute: str, line: int | None) -> str:
    """ARC's ``dir/`` output (a whole directory; ``/`` is the session directory) as a glob."""
    if not name.endswith("/"):
        return name
    ctx.note(attribute, line, f"{name}: a directory, read as every file under it")
    return f"{name.strip('/')}/**/*" if name.strip("/") else "**/*"
