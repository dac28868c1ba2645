"""Parsers for what the ARC 6 client tools print (``arcsub``, ``arcstat -l``, ``arcinfo -l``).

Checked against output captured from the real tools and a real A-REX 6.17
(``tests/arc/data/arc_cli``). ``arcstat -J`` is not used: its "JSON" lacks the outer
braces and the CE's specific state, which is what the state map needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SUBMITTED = re.compile(r"^Job submitted with jobid: (\S+)", re.MULTILINE)
_JOB = re.compile(r"^Job: (\S+)\s*$")
_FIELD = re.compile(r"^ (\S[^:]*): (.*)$")


@dataclass
class ArcJobInfo:
    """One job as ``arcstat -l`` describes it."""

    job_id: str
    name: str = ""
    state: str = ""  # the client's generic state: Accepted, Running, Finished, Failed, Killed...
    specific_state: str = ""  # the CE's own state: ACCEPTED ... FINISHED, FAILED, KILLED
    exit_code: int | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def native_state(self) -> str:
        """The CE's state when the CE gave one, else the client's generic state, upper-cased."""
        return (self.specific_state or self.state).upper()


@dataclass
class ArcSubmitOutput:
    ids: list[str]  # in the order arcsub submitted them
    not_submitted: list[str]  # job names arcsub lists as not submitted


@dataclass
class ArcInfo:
    """What ``arcinfo -l`` says about a CE: its name, batch system and queues (shares)."""

    name: str = ""
    lrms: str = ""
    queues: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)


def parse_arcsub(stdout: str) -> ArcSubmitOutput:
    not_submitted: list[str] = []
    _, marker, rest = stdout.partition("were not submitted:")
    if marker:
        not_submitted = re.findall(r"^JobName: (.*)$", rest, re.MULTILINE)
    return ArcSubmitOutput(ids=_SUBMITTED.findall(stdout), not_submitted=[n.strip() for n in not_submitted])


def parse_arcstat(text: str) -> dict[str, ArcJobInfo]:
    """``arcstat [-l]`` blocks (``Job: <id>`` then indented ``Key: value`` lines) by job id."""
    jobs: dict[str, ArcJobInfo] = {}
    current: ArcJobInfo | None = None
    for line in text.splitlines():
        match = _JOB.match(line)
        if match:
            current = jobs.setdefault(match.group(1), ArcJobInfo(job_id=match.group(1)))
            continue
        field_match = _FIELD.match(line)
        if current is None or field_match is None:
            continue
        key, value = field_match.group(1), field_match.group(2).strip()
        if key == "Name":
            current.name = value
        elif key == "State":
            current.state = value.split(" (")[0]
        elif key == "Specific state":
            current.specific_state = value
        elif key == "Exit Code" and value.lstrip("-").isdigit():
            current.exit_code = int(value)
        elif key == "Job Error":
            current.errors.append(value)
    return jobs


def parse_arcinfo(text: str) -> ArcInfo:
    info = ArcInfo()
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith(":") and ": " not in stripped:
            section = stripped[:-1]
            continue
        key, _, value = stripped.partition(": ")
        if section == "Computing service" and key == "Name":
            info.name = value
        elif section == "Endpoint Information" and key == "Interface":
            info.interfaces.append(value)
        elif section == "Batch System Information" and key == "Resource manager":
            info.lrms = value.split(" ")[0]
        elif section == "Share Information" and key == "Name":
            info.queues.append(value)
    return info


def tool_error(stderr: str) -> str:
    """The ``ERROR:`` lines of a tool's stderr, de-duplicated, as one message."""
    lines = [ln.split("ERROR:", 1)[1].strip() for ln in stderr.splitlines() if "ERROR:" in ln]
    if not lines:
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()][-2:]
    return "; ".join(dict.fromkeys(lines)) or "no error message"
