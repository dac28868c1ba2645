"""Probe results and site verdicts: certified / degraded / failed / unreachable."""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from computeops_grid.errors import CopsError


class State(int, enum.Enum):
    """Nagios plugin states (the probes' exit codes)."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def severity(self) -> int:
        """Order used for 'worst': OK < WARNING < UNKNOWN < CRITICAL."""
        return {0: 0, 1: 1, 3: 2, 2: 3}[self.value]


class Verdict(str, enum.Enum):
    CERTIFIED = "certified"  # every probe OK
    DEGRADED = "degraded"  # warnings or unknowns, nothing critical
    FAILED = "failed"  # at least one probe critical
    UNREACHABLE = "unreachable"  # the validation job did not run or returned no result
    PENDING = "pending"  # the validation job has not finished yet


@dataclass
class ProbeResult:
    name: str
    state: State
    summary: str
    perfdata: dict[str, dict[str, Any]] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeResult:
        return cls(
            name=str(data["name"]),
            state=State(int(data["state"])),
            summary=str(data.get("summary", "")),
            perfdata=dict(data.get("perfdata", {})),
            details=[str(d) for d in data.get("details", [])],
            seconds=float(data.get("seconds", 0.0)),
        )


@dataclass
class SiteResult:
    site: str
    verdict: Verdict
    probes: list[ProbeResult] = field(default_factory=list)
    host: str = ""
    message: str = ""  # why a site is unreachable / pending
    job_id: str = ""
    user: str = ""  # the account the probes ran as on the node

    def worst(self) -> State:
        return max((p.state for p in self.probes), key=lambda s: s.severity, default=State.OK)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        for probe in data["probes"]:
            probe["state"] = int(probe["state"])
            probe["status"] = State(probe["state"]).name
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SiteResult:
        return cls(
            site=str(data["site"]),
            verdict=Verdict(data["verdict"]),
            probes=[ProbeResult.from_dict(p) for p in data.get("probes", [])],
            host=str(data.get("host", "")),
            message=str(data.get("message", "")),
            job_id=str(data.get("job_id", "")),
            user=str(data.get("user", "")),
        )


def verdict_of(probes: list[ProbeResult]) -> Verdict:
    states = {p.state for p in probes}
    if not probes:
        return Verdict.UNREACHABLE
    if State.CRITICAL in states:
        return Verdict.FAILED
    if states & {State.WARNING, State.UNKNOWN}:
        return Verdict.DEGRADED
    return Verdict.CERTIFIED


def load_result(path: Path, site: str, job_id: str = "") -> SiteResult:
    """A bundle's ``validation-result.json`` -> SiteResult with its verdict."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        probes = [ProbeResult.from_dict(p) for p in data["probes"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CopsError(f"validation result {path} is unreadable: {exc}") from None
    host, user = str(data.get("host", "")), str(data.get("user", ""))
    return SiteResult(site, verdict_of(probes), probes, host=host, job_id=job_id, user=user)
