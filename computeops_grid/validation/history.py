"""Campaign history: the results of every run, and what changed since the previous one."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from computeops_grid.validation.results import SiteResult


@dataclass(frozen=True)
class Change:
    site: str
    probe: str  # "" for the site's verdict
    before: str
    after: str

    def __str__(self) -> str:
        what = f"{self.site}/{self.probe}" if self.probe else self.site
        return f"{what}: {self.before} -> {self.after}"


def save_results(folder: Path, run_id: str, results: list[SiteResult]) -> Path:
    """Write (or overwrite) ``runs/<run_id>.json`` atomically."""
    runs = folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / f"{run_id}.json"
    data = {"run_id": run_id, "saved": time.time(), "sites": [r.as_dict() for r in results]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path


def previous_results(folder: Path, run_id: str) -> list[SiteResult] | None:
    """Results of the latest run before ``run_id`` (run ids sort by time)."""
    earlier = sorted(p for p in (folder / "runs").glob("*.json") if p.stem < run_id)
    if not earlier:
        return None
    data: dict[str, Any] = json.loads(earlier[-1].read_text(encoding="utf-8"))
    return [SiteResult.from_dict(s) for s in data["sites"]]


def changes(before: list[SiteResult] | None, after: list[SiteResult]) -> list[Change]:
    """Verdict and probe-state changes per site; a site new in this run counts as a change."""
    if before is None:
        return []
    old = {r.site: r for r in before}
    found: list[Change] = []
    for result in after:
        prev = old.get(result.site)
        if prev is None:
            found.append(Change(result.site, "", "absent", result.verdict.value))
            continue
        if prev.verdict != result.verdict:
            found.append(Change(result.site, "", prev.verdict.value, result.verdict.value))
        states = {p.name: p.state.name for p in prev.probes}
        for probe in result.probes:
            was = states.get(probe.name, "absent")
            if was != probe.state.name:
                found.append(Change(result.site, probe.name, was, probe.state.name))
    return found
